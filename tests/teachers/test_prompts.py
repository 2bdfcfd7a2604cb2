import random
import subprocess
import sys

from recon.teachers.prompts import ENDINGS, NUM_PROMPTS, TEMPLATES, all_prompts, prompt, random_prompt


def test_templates_and_endings():
    assert len(TEMPLATES) == 20 and len(ENDINGS) == 3 and NUM_PROMPTS == 60
    assert TEMPLATES[0] == "" and TEMPLATES[1] == "A " and TEMPLATES[-1] == "A 3D rendering image of a "
    assert "A point cloud model of a " in TEMPLATES and "A image of " in TEMPLATES
    assert ENDINGS == [".", " with white background.", " with black context."]


def test_official_zero_shot_order():
    ps = all_prompts("chair")
    assert len(ps) == 60 and len(set(ps)) == 60
    assert ps[0] == "chair." and ps[1] == "A chair."
    assert ps[20] == "chair with white background."
    assert ps[59] == "A 3D rendering image of a chair with black context."
    assert all(ps[j] == TEMPLATES[j % 20] + "chair" + ENDINGS[j // 20] for j in range(60))
    assert prompt("chair", 23) == ps[23]
    assert random_prompt("chair", random.Random(0)) in ps


def test_import_is_lazy():
    code = ("import sys, recon.data, recon.teachers, recon.teachers.prompts; "
            "print('open_clip' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

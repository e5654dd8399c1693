"""Local harness tasks (JSONL files, no network) and tiny models for the evaluation tests."""

import json
from pathlib import Path

import pytest

MULTIPLE_CHOICE = [
    {"question": "The capital of France is", "choices": ["Paris", "London", "a fish"], "answer": 0},
    {"question": "Two plus two is", "choices": ["four", "five"], "answer": 1},
    {"question": "def f(x): return", "choices": ["x", "while", "import os"], "answer": 0},
    {"question": "import", "choices": ["os", "the", "sys module"], "answer": 2},
]
CLOZE = [
    {"text": "the quick brown fox jumps over the lazy dog"},
    {"text": "import os and import sys"},
    {"text": "return the value of x"},
    {"text": "for i in range(10): print(i)"},
]


def write_tasks(folder: Path) -> Path:
    """``tiny_mc`` (multiple choice: acc, acc_norm) and ``tiny_cloze`` (last word: perplexity,
    acc), the harness's YAML format reading JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("mc", MULTIPLE_CHOICE), ("cloze", CLOZE)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "tiny_mc.yaml").write_text(
        f"""task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder / "mc.jsonl"}
output_type: multiple_choice
test_split: test
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""
    )
    (folder / "tiny_cloze.yaml").write_text(
        f"""task: tiny_cloze
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder / "cloze.jsonl"}
output_type: loglikelihood
test_split: test
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
    )
    return folder


@pytest.fixture(scope="session")
def local_tasks(tmp_path_factory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("tasks"))

"""Config loading: the seed's params.json, overrides, YAML, and one test per kind of error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from reidkit.config import Config, apply_overrides, load_config, validate_config
from reidkit.utils.errors import ConfigError

# Written from the seed document: every key it lists, with the seed's meanings.
SEED_PARAMS = {
    "batch_size": 32,
    "batches_dir": "DATA",
    "data_augmentation": {"mirro": True},
    "epoch": 2,
    "imagenet_pretrain": False,
    "img_h": 256,
    "img_w": 128,
    "lr": {"base_lr": 0.01, "fc_lr": 0.1, "decay_step": 40},
    "model_params": {"backbone": "resnet50"},
    "optimizer": "SGD",
    "parallels": [0],
    "pretrain_snapshot": None,
    "weight_decay": 0.0005,
    "fine_tune": False,
    "evaluation_params": {"type": "None"},
    "working_dir": "WORK",
    "tri_loss_margin": "soft_margin",
    "tri_loss_lambda_cls": 1.0,
    "batch_sampling_params": {"class_balanced": True, "P": 8, "K": 4},
}


def write(tmp_path: Path, data: dict, name: str = "params.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def params(tmp_path: Path) -> dict:
    data = json.loads(json.dumps(SEED_PARAMS))
    data["batches_dir"] = str(tmp_path)
    data["working_dir"] = str(tmp_path / "work")
    return data


def test_seed_params_accepted_with_seed_meaning(tmp_path: Path, params: dict) -> None:
    cfg = load_config(write(tmp_path, params), sub_working_dir="exp1")
    assert cfg.optimizer == "sgd"
    assert cfg.data_augmentation.mirror is True
    assert cfg.evaluation_params.type is None
    assert cfg.use_triplet and cfg.tri_loss_margin == "soft_margin"
    assert cfg.run_dir == Path(params["working_dir"]) / "exp1"
    assert cfg.num_identities_per_batch == 8


def test_yaml_and_overrides(tmp_path: Path, params: dict) -> None:
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    cfg = load_config(path, ["lr.base_lr=0.5", "model_params.backbone=resnet18", "parallels=[]"])
    assert cfg.lr.base_lr == 0.5
    assert cfg.model_params.backbone == "resnet18"
    assert cfg.parallels == []


def test_config_is_immutable(params: dict) -> None:
    cfg = validate_config(params)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.batch_size = 3  # type: ignore[misc]


def test_unknown_key_suggests_closest(params: dict) -> None:
    params["batch_sise"] = 3
    with pytest.raises(ConfigError, match=r"unknown key 'batch_sise'; did you mean 'batch_size'"):
        validate_config(params, "p.json")


def test_unknown_nested_key(params: dict) -> None:
    params["lr"]["base_rl"] = 0.1
    with pytest.raises(ConfigError, match=r"lr.base_rl'; did you mean 'base_lr'"):
        validate_config(params, "p.json")


def test_wrong_type_names_key_and_value(params: dict) -> None:
    params["epoch"] = "ten"
    with pytest.raises(ConfigError, match=r"p.json: epoch = 'ten'"):
        validate_config(params, "p.json")


def test_invalid_choice_lists_valid_ones(params: dict) -> None:
    params["optimizer"] = "sgdd"
    with pytest.raises(ConfigError, match=r"optimizer = 'sgdd'.*'adam'.*did you mean 'sgd'"):
        validate_config(params, "p.json")


def test_batch_size_not_divisible_by_k(params: dict) -> None:
    params["batch_size"] = 30
    params["batch_sampling_params"] = {"class_balanced": True, "K": 4}
    with pytest.raises(ConfigError, match=r"batch_size: 30 is not divisible by .*K=4"):
        validate_config(params, "p.json")


def test_p_times_k_must_equal_batch_size(params: dict) -> None:
    params["batch_sampling_params"] = {"class_balanced": True, "P": 4, "K": 4}
    with pytest.raises(ConfigError, match=r"P\*K = 4\*4 = 16 must equal batch_size 32"):
        validate_config(params, "p.json")


def test_non_positive_image_size(params: dict) -> None:
    params["img_h"] = 0
    with pytest.raises(ConfigError, match=r"img_h = 0: Input should be greater than 0"):
        validate_config(params, "p.json")


def test_bad_triplet_margin(params: dict) -> None:
    params["tri_loss_margin"] = "soft"
    with pytest.raises(ConfigError, match=r"tri_loss_margin = 'soft'.*'soft_margin'"):
        validate_config(params, "p.json")


def test_no_loss_at_all(params: dict) -> None:
    params["tri_loss_margin"] = 0
    params["tri_loss_lambda_cls"] = 0
    with pytest.raises(ConfigError, match="no loss to train"):
        validate_config(params, "p.json")


def test_missing_required_key(params: dict) -> None:
    del params["batches_dir"]
    with pytest.raises(ConfigError, match=r"missing required key 'batches_dir'"):
        validate_config(params, "p.json")


def test_missing_dataset_folder(tmp_path: Path, params: dict) -> None:
    params["batches_dir"] = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"batches_dir = '.*nope': no such dataset folder"):
        load_config(write(tmp_path, params))


def test_missing_snapshot_file(tmp_path: Path, params: dict) -> None:
    params["pretrain_snapshot"] = str(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match=r"pretrain_snapshot = .*missing.pth': file not found"):
        load_config(write(tmp_path, params))


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad.json: not valid json"):
        load_config(bad)
    listy = tmp_path / "list.json"
    listy.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listy)


def test_bad_override() -> None:
    with pytest.raises(ConfigError, match="expected key.sub=value"):
        apply_overrides({}, ["lr.base_lr"])
    with pytest.raises(ConfigError, match="epoch is not a section"):
        apply_overrides({"epoch": 3}, ["epoch.x=1"])


def test_augmentation_seed_spellings() -> None:
    as_list = validate_config({"batches_dir": ".", "data_augmentation": ["mirro"]})
    assert as_list.data_augmentation.mirror
    as_str = validate_config({"batches_dir": ".", "data_augmentation": "random_erasing"})
    assert as_str.data_augmentation.random_erasing == 0.5
    assert not as_str.data_augmentation.mirror


def test_config_reference_is_up_to_date() -> None:
    from reidkit.config_doc import render

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text() == render(), "docs/config.md is stale: run `make docs`"
    for key in Config.model_fields:
        assert f"`{key}`" in doc.read_text()

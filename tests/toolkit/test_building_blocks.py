import pytest
import torch

from toolkit.models import create_model, list_models
from toolkit.models.layers import ACTIVATIONS
from toolkit.recipe import load_recipe
from toolkit.training.losses import LOSSES, create_loss
from toolkit.training.optim import OPTIMIZERS, SCHEDULES, create_optimizer, lr_factor


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_a_model_that_takes_raw_pixels(activation: str) -> None:
    recipe = load_recipe("image-cnn", {"model.activation": activation, "data.image_size": 16,
                                       "data.channels": 3,
                                       "model.channels": [4, 8], "model.hidden": [6, 5]})
    model = create_model(recipe, 3).eval()
    logits = model(torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8))
    assert logits.shape == (2, 3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [6, 5, 3]  # hidden layers, then the output
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [4, 8]  # model.channels: depth and widths
    acts = [m for m in model.modules() if isinstance(m, ACTIVATIONS[activation])]
    assert len(acts) == 4  # one per conv stage and per hidden layer
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [recipe.model.dropout] * 3


#: An image recipe whose `auto` input size is given, so a model is built without data.
SIZED = {"data.image_size": 32, "data.channels": 3}


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid activations: relu, gelu"):
        create_model(load_recipe("image-cnn", {**SIZED, "model.activation": "swish"}), 3)
    with pytest.raises(ValueError, match="valid families: cnn"):
        create_model(load_recipe("image-cnn", {**SIZED, "model.family": "vit"}), 3)
    with pytest.raises(ValueError, match="valid losses: cross_entropy, mse, l1"):
        create_loss("hinge")
    assert list_models("image") == ["cnn"]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_reward_the_right_answer(name: str) -> None:
    loss = create_loss(name)
    targets = torch.tensor([0, 1])
    right = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])
    assert loss(right, targets) < loss(-right, targets)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_step_and_do_not_decay_biases(name: str) -> None:
    recipe = load_recipe("image-cnn", {"optim.name": name, "optim.weight_decay": 0.1})
    model = torch.nn.Linear(3, 2)
    opt = create_optimizer(model, recipe.optim)
    decays = {tuple(p.shape): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {(2, 3): 0.1, (2,): 0.0}
    before = model.weight.detach().clone()
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_warm_up_then_never_exceed_the_peak(schedule: str) -> None:
    optim = load_recipe("image-cnn", {"optim.schedule": schedule, "optim.warmup_epochs": 2}).optim
    factors = [lr_factor(optim, e / 4, 10) for e in range(40)]
    assert factors[0] < factors[7] <= 1.0  # warm-up rises
    assert all(0 <= f <= 1.0 for f in factors)
    if schedule != "constant":
        assert factors[-1] < 0.2


@pytest.mark.parametrize(("mode", "axes"), [("none", ()), ("horizontal", (2,)),
                                            ("both", (2, 1))])
def test_random_flip_only_flips_and_is_seeded(mode: str, axes: tuple[int, ...]) -> None:
    from toolkit.training.augment import random_flip

    batch = torch.randint(0, 255, (64, 5, 7, 3), dtype=torch.uint8)
    out = random_flip(batch, mode, torch.Generator().manual_seed(0))
    again = random_flip(batch, mode, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    variants = [batch]
    for axis in axes:
        variants += [v.flip(axis) for v in variants]
    kinds = {next(i for i, v in enumerate(variants) if torch.equal(out[n], v[n]))
             for n in range(64)}
    assert kinds == set(range(len(variants)))  # every allowed flip happens, nothing else


def test_cross_entropy_with_smoothing_and_weights_matches_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    targets = torch.tensor([0, 2])
    log_p = torch.log_softmax(logits, dim=1)
    eps, w = 0.1, torch.tensor([1.0, 2.0, 3.0])
    per = -((1 - eps) * log_p[[0, 1], targets] + eps / 3 * log_p.sum(dim=1))
    expected = (per * w[targets]).sum() / w[targets].sum()
    got = create_loss("cross_entropy", label_smoothing=eps, class_weights=w.tolist())
    assert torch.allclose(got(logits, targets), expected)


@pytest.mark.parametrize(("name", "power"), [("mse", 2), ("l1", 1)])
def test_probability_errors_match_a_hand_computation(name: str, power: int) -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    targets = torch.tensor([0, 0])
    p = torch.softmax(logits, dim=1)
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected = (p - onehot).abs().pow(power).sum(dim=1).mean()
    assert torch.allclose(create_loss(name)(logits, targets), expected)


def test_balanced_class_weights() -> None:
    from toolkit.training.losses import balanced_weights

    assert balanced_weights([0, 0, 0, 1], 3) == [4 / 9, 4 / 3, 0.0]


@pytest.mark.parametrize(
    ("sets", "cls", "expected"),
    [({"optim.name": "sgd"}, torch.optim.SGD, {"momentum": 0, "nesterov": False}),
     ({"optim.name": "momentum", "optim.momentum": 0.8}, torch.optim.SGD,
      {"momentum": 0.8, "nesterov": False}),
     ({"optim.name": "nesterov"}, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
     ({"optim.name": "adam", "optim.betas": [0.8, 0.99]}, torch.optim.Adam,
      {"betas": (0.8, 0.99)}),
     ({"optim.name": "adamw", "optim.lr": 0.5}, torch.optim.AdamW, {"lr": 0.5})],
)
def test_optimizer_names_and_hyperparameters(sets: dict, cls: type, expected: dict) -> None:
    opt = create_optimizer(torch.nn.Linear(2, 2), load_recipe("image-cnn", sets).optim)
    assert type(opt) is cls
    for key, value in expected.items():
        assert opt.param_groups[0][key] == value


def test_decay_on_biases_and_norms_when_asked() -> None:
    optim = load_recipe("image-cnn", {"optim.weight_decay": 0.1,
                                      "optim.decay_bias_and_norm": True}).optim
    opt = create_optimizer(torch.nn.Linear(3, 2), optim)
    assert {g["weight_decay"] for g in opt.param_groups if g["params"]} == {0.1}


def test_optimizer_state_survives_a_checkpoint(tmp_path) -> None:
    from toolkit.training.checkpoint import LoopState, load_checkpoint, save_checkpoint

    for name in ("adam", "momentum"):
        model = torch.nn.Linear(3, 2)
        opt = create_optimizer(model, load_recipe("image-cnn", {"optim.name": name}).optim)
        for _ in range(2):
            model(torch.ones(4, 3)).sum().backward()
            opt.step()
        save_checkpoint(tmp_path / "c.safetensors", model, opt, LoopState(3, [0.5], 2, 1))
        fresh = torch.nn.Linear(3, 2)
        fresh_opt = create_optimizer(fresh, load_recipe("image-cnn", {"optim.name": name}).optim)
        loop, _ = load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt)
        assert loop == LoopState(3, [0.5], 2, 1)
        assert torch.equal(fresh.weight, model.weight)
        a, b = opt.state_dict(), fresh_opt.state_dict()
        for index, state in a["state"].items():
            for key, value in state.items():
                other = b["state"][index][key]
                assert torch.equal(value, other) if torch.is_tensor(value) else value == other
        assert a["param_groups"] == b["param_groups"]


def test_a_checkpoint_is_the_same_bytes_at_every_save_and_the_old_form_still_loads(
        tmp_path) -> None:
    import json

    from safetensors.torch import load_file, save_file

    from toolkit.training.checkpoint import LoopState, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = create_optimizer(model, load_recipe("image-cnn", {"optim.name": "adam"}).optim)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    loop = LoopState(2, [0.5, -0.25], 1, 1)
    paths = [tmp_path / f"{i}.safetensors" for i in range(6)]
    for path in paths:
        save_checkpoint(path, model, opt, loop, {"scale": 1024.0})
    assert len({p.read_bytes() for p in paths}) == 1

    # A checkpoint written before this format: four metadata keys, each a JSON string.
    opt_state = opt.state_dict()
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]
    scalars = {str(i): {k: v for k, v in s.items() if not torch.is_tensor(v)}
               for i, s in opt_state["state"].items()}
    tensors = {k: v for k, v in load_file(paths[0]).items()}
    save_file(tensors, tmp_path / "old.safetensors", metadata={
        "loop": json.dumps({"epoch": 2, "best_value": [0.5, -0.25], "best_epoch": 1,
                            "bad_epochs": 1}),
        "optim_groups": json.dumps(groups), "optim_scalars": json.dumps(scalars),
        "scaler": json.dumps({"scale": 1024.0})})
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = create_optimizer(fresh, load_recipe("image-cnn", {"optim.name": "adam"}).optim)
    assert load_checkpoint(tmp_path / "old.safetensors", fresh, fresh_opt) == (
        loop, {"scale": 1024.0})
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_opt.state_dict()["param_groups"] == opt_state["param_groups"]


def test_crop_and_jitter_keep_shape_change_pixels_and_are_seeded() -> None:
    from toolkit.training.augment import color_jitter, random_resized_crop

    batch = torch.randint(0, 255, (6, 20, 30, 3), dtype=torch.uint8)
    for fn, strength in ((random_resized_crop, 0.3), (color_jitter, 0.4)):
        out = fn(batch, strength, torch.Generator().manual_seed(1))
        assert out.shape == batch.shape and out.dtype == torch.uint8
        assert not torch.equal(out, batch)
        assert torch.equal(out, fn(batch, strength, torch.Generator().manual_seed(1)))
    assert torch.equal(random_resized_crop(batch, 1.0, torch.Generator()), batch)  # off
    assert torch.equal(color_jitter(batch, 0.0, torch.Generator()), batch)  # off

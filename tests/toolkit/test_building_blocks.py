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
                                       "model.channels": [4, 8], "model.hidden": [6, 5]})
    model = create_model(recipe, 3).eval()
    logits = model(torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8))
    assert logits.shape == (2, 3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [6, 5, 3]  # hidden layers, then the output


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid activations: relu, gelu"):
        create_model(load_recipe("image-cnn", {"model.activation": "swish"}), 3)
    with pytest.raises(ValueError, match="valid families: cnn"):
        create_model(load_recipe("image-cnn", {"model.family": "vit"}), 3)
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

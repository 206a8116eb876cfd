import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from models.engine.training import train
from models.findings.guided import (
    ATROUS_RATES,
    GuidedConfig,
    GuidedNet,
    GuidedTask,
    classification_loss,
    finding_metrics,
    guidance_loss,
    guided_train_config,
    predict,
    saturation_hinge,
    total_loss,
)


def test_guidance_loss_matches_equation_two_by_hand():
    activation = torch.tensor([[[0.5, 0.0001], [0.9, 0.2]]])
    cue = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    # (1 − m)·log(max(a, ε)) over 4 pixels: log 0.5 + log 1e-3 + 0 + log 0.2, divided by 4
    expected = (math.log(0.5) + math.log(1e-3) + math.log(0.2)) / 4
    assert guidance_loss(activation, cue, epsilon=1e-3).item() == pytest.approx(expected, rel=1e-6)


def test_guidance_loss_averages_over_the_batch_and_ignores_activation_inside_the_cue():
    activation = torch.full((2, 1, 2, 2), 0.25)
    cue = torch.stack([torch.ones(1, 2, 2), torch.zeros(1, 2, 2)])
    assert guidance_loss(activation, cue).item() == pytest.approx(math.log(0.25) / 2, rel=1e-6)


def test_an_incomplete_cue_adds_no_guidance_but_still_counts_in_the_mean():
    activation = torch.full((2, 1, 2, 2), 0.25)
    cue = torch.zeros(2, 1, 2, 2)
    complete = torch.tensor([1.0, 0.0])   # second: a box cue, its other regions unknown
    assert guidance_loss(activation, cue, cue_complete=complete).item() == pytest.approx(math.log(0.25) / 2, rel=1e-6)


def test_minimising_guidance_lowers_activation_outside_the_cue_only():
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    cue = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    guidance_loss(torch.sigmoid(logits), cue).backward()
    assert logits.grad[0, 0, 0, 0] == 0 and (logits.grad[0, 0].flatten()[1:] > 0).all()


def test_classification_loss_is_binary_cross_entropy_of_the_probability():
    logit, present = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    p = 1 / (1 + math.exp(-2.0))
    expected = (-math.log(0.5) - math.log(1 - p)) / 2
    assert classification_loss(logit, present).item() == pytest.approx(expected, rel=1e-6)


def test_lambda_zero_is_the_unguided_ablation():
    logit, map_logits = torch.tensor([0.3]), torch.full((1, 1, 2, 2), -0.4)
    loss, parts = total_loss(logit, map_logits, torch.tensor([1.0]), torch.zeros(1, 2, 2), guidance_weight=0.0)
    assert loss.item() == pytest.approx(parts["class_loss"]) and parts["guide_loss"] < 0


@pytest.mark.parametrize("size_class", ["small", "medium", "large"])
def test_activation_map_is_a_sixteenth_of_the_input_with_the_size_class_rates(size_class):
    net = GuidedNet(GuidedConfig(size_class=size_class, input_size=64, width=4, atrous_channels=8))
    logit, activation = net(torch.rand(2, 3, 64, 64))
    assert logit.shape == (2,) and activation.shape == (2, 1, 4, 4)
    assert ((activation > 0) & (activation < 1)).all()
    assert net.rates == ATROUS_RATES[size_class] and len(net.pyramid) == len(ATROUS_RATES[size_class])


def test_paper_input_gives_a_32_by_32_map():
    assert GuidedConfig(input_size=512).map_size == 32


def test_small_findings_max_pool_before_averaging():
    net = GuidedNet(GuidedConfig(size_class="small", input_size=64, width=4, small_pool=4, existence_floor=False))
    net.eval()
    with torch.no_grad():
        for p in net.to_map.parameters():
            p.zero_()
        logit, _ = net(torch.rand(1, 3, 64, 64))
    assert logit.item() == 0.0  # zero logits stay zero through max-pool and GAP
    assert net.small_pool == 4 and GuidedNet(GuidedConfig(size_class="large", input_size=64, width=4)).small_pool == 1


def tiny_findings(count=24, size=32, seed=0):
    """Bright square = finding present; the cue marks its quadrant at the 2×2 map size."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=g) * 0.2
    present = (torch.arange(count) % 2).float()
    cues = torch.zeros(count, 2, 2)
    for i in range(count):
        if present[i]:
            images[i, :, 4:12, 4:12] = 0.9
            cues[i, 0, 0] = 1
    return TensorDataset(images, present, cues, torch.ones(count))


def test_one_epoch_of_guided_training_on_tiny_data_lowers_the_loss(tmp_path):
    config = GuidedConfig(input_size=32, width=4, atrous_channels=4, residual_units=1)
    task = GuidedTask(config, tiny_findings(), tiny_findings(seed=1), augment=True)
    engine = guided_train_config(epochs=1, batch_size=8, lr=0.05, device="cpu")
    torch.manual_seed(engine.seed)
    fresh = task.build_model()
    before = task.validate(fresh, DataLoader(tiny_findings(), batch_size=8), "cpu")["val_loss"]
    result = train(task, engine, tmp_path)
    assert result.history[0]["val_loss"] < before
    assert {"val_auroc", "val_air_tp", "val_sensitivity"} <= set(result.best_metrics)


def test_finding_metrics_report_auroc_and_air_on_true_positives():
    outputs = {
        "logits": np.array([3.0, -3.0, 2.0, -2.0]),
        "present": np.array([1.0, 0.0, 1.0, 0.0]),
        "activations": np.array([[[1.0, 0.0]], [[0.5, 0.5]], [[0.3, 0.1]], [[0.2, 0.2]]]),
        "cues": np.array([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]),
    }
    outputs["probabilities"] = 1 / (1 + np.exp(-outputs["logits"]))
    metrics = finding_metrics(outputs)
    assert metrics["auroc"] == 1.0 and metrics["sensitivity"] == 1.0 and metrics["specificity"] == 1.0
    assert metrics["air_tp"] == pytest.approx((1.0 + 0.25) / 2) and math.isnan(metrics["air_fn"])


def test_finding_metrics_measure_air_against_the_cue_the_network_trained_with():
    # One true positive whose regions cover a quarter of one cell: the soft cue credits a quarter of
    # that cell's activation, the paper's binary cue (as-published runs) all of it.
    outputs = {"logits": np.array([3.0, -3.0]), "present": np.array([1.0, 0.0]),
               "activations": np.array([[[0.6, 0.4]], [[0.5, 0.5]]]),
               "cues": np.array([[[0.25, 0.0]], [[0.0, 0.0]]])}
    outputs["probabilities"] = 1 / (1 + np.exp(-outputs["logits"]))
    assert finding_metrics(outputs)["air_tp"] == pytest.approx(0.15)
    assert finding_metrics(outputs, soft_cue=False)["air_tp"] == pytest.approx(0.6)
    assert finding_metrics(outputs, soft_cue=False)["cue_tp"] == pytest.approx(0.5)
    assert outputs["cues"][0, 0, 0] == 0.25          # the caller's arrays are left as they were


def test_predict_returns_maps_per_image():
    net = GuidedNet(GuidedConfig(input_size=32, width=4, atrous_channels=4))
    outputs = predict(net, DataLoader(tiny_findings(count=4), batch_size=3), "cpu")
    assert outputs["activations"].shape == (4, 2, 2) and outputs["probabilities"].shape == (4,)


def test_fov_mask_keeps_activation_inside_the_fundus():
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 64, 64)
    image[:, :, 16:48, 16:48] = 0.5            # the "fundus"; the rest is black border
    net = GuidedNet(GuidedConfig(input_size=64, width=4, atrous_channels=4)).eval()
    logit, activation = net(image)
    outside = torch.ones(4, 4, dtype=torch.bool)
    outside[1:3, 1:3] = False
    assert activation[0, 0][outside].max() < 1e-6 and activation[0, 0][~outside].min() > 1e-6
    assert torch.isfinite(logit).all()


def test_models_saved_before_the_fov_mask_load_without_it():
    old = GuidedConfig.from_saved({"finding": "drusen", "width": 4, "unknown": 1})
    assert not old.fov_mask and not old.existence_floor
    new = GuidedConfig.from_saved(GuidedConfig().to_dict())
    assert new.fov_mask and new.existence_floor


def _net_with_map(values: torch.Tensor, **config) -> GuidedNet:
    """A guided net whose logit map is ``values`` (4×4) whatever the image."""
    net = GuidedNet(GuidedConfig(size_class="large", input_size=64, width=4, atrous_channels=4,
                                 fov_mask=False, **config)).eval()
    net.to_map.register_forward_hook(lambda module, inputs, output: values.reshape(1, 1, 4, 4))
    return net


def test_existence_ignores_logits_below_epsilon():
    # Below log(ε/(1−ε)) eq. 2 no longer acts; the floor keeps existence from hiding there.
    floor = math.log(1e-3 / (1 - 1e-3))
    deep = torch.full((4, 4), floor - 30.0)
    shallow = torch.full((4, 4), floor - 10.0)
    for background in (deep, shallow):
        background[0, 0] = 20.0
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        deep_logit, _ = _net_with_map(deep)(image)
        shallow_logit, _ = _net_with_map(shallow)(image)
        unfloored, _ = _net_with_map(deep, existence_floor=False)(image)
    expected = (20.0 + 15 * floor) / 16
    assert deep_logit.item() == pytest.approx(expected, abs=1e-3)
    assert shallow_logit.item() == pytest.approx(expected, abs=1e-3)
    assert unfloored.item() == pytest.approx((20.0 + 15 * (floor - 30.0)) / 16, abs=1e-4)


def test_saturation_hinge_adds_the_positive_logits_outside_the_cue():
    logits = torch.tensor([[[3.0, -2.0], [5.0, 1.0]]])
    cue = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert saturation_hinge(logits, cue).item() == pytest.approx((5.0 + 1.0) / 4)
    assert saturation_hinge(logits, cue, cue_complete=torch.zeros(1)).item() == 0.0


def test_with_the_hinge_a_saturated_cell_outside_the_cue_is_still_pulled_down():
    logits = torch.tensor([[[30.0, 30.0]]], requires_grad=True)
    cue = torch.tensor([[[1.0, 0.0]]])
    for hinge, least in ((False, 0.0), (True, 0.5)):
        logits.grad = None
        total_loss(torch.tensor([0.0]), logits, torch.tensor([1.0]), cue, hinge=hinge)[0].backward()
        assert logits.grad[0, 0, 0] == 0.0                        # inside the cue: free
        assert logits.grad[0, 0, 1] == pytest.approx(least, abs=1e-6)   # outside: only the hinge pulls


def test_as_published_drops_our_four_additions_and_keeps_the_rest():
    ours = GuidedConfig(finding="drusen", width=4, guidance_weight=0.5)
    paper = ours.as_published()
    assert not (paper.fov_mask or paper.existence_floor or paper.existence_intercept or paper.saturation_hinge)
    assert (paper.finding, paper.width, paper.guidance_weight) == ("drusen", 4, 0.5)
    assert not hasattr(GuidedNet(GuidedConfig(input_size=32, width=4, existence_intercept=False)), "intercept")


def test_as_published_uses_the_papers_binary_cue_after_augmentation():
    from models.findings.guided import cue_as_configured

    paper = GuidedConfig(finding="drusen", input_size=32, width=4).as_published()
    assert paper.soft_cue is False and GuidedConfig().soft_cue is True
    cues = torch.tensor([[[[0.0, 0.3], [1.0, 0.7]]]])
    assert torch.equal(cue_as_configured(cues, soft=False), torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]))
    assert torch.equal(cue_as_configured(cues, soft=True), cues)
    torch.manual_seed(0)
    net = GuidedNet(paper)
    images, present = torch.rand(2, 3, 32, 32), torch.tensor([1.0, 0.0])
    soft_cue = torch.zeros(2, 1, 2, 2)
    soft_cue[0, 0, 0, 0] = 0.25
    batch = (images, present, soft_cue, torch.ones(2))
    loss, _ = GuidedTask(paper, None, None, augment=False).loss(net, batch, "cpu")
    logit, map_logits = net.forward_logits(images)
    expected, _ = total_loss(logit, map_logits, present, (soft_cue > 0).float(), paper.guidance_weight,
                             paper.epsilon, torch.ones(2), False)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)

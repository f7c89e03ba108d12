import pytest
import torch

from model.moe import DynamicMoE, cv_squared

DIM = 16


def make_moe(num_experts: int = 8, k: int = 2, **kwargs) -> DynamicMoE:
    torch.manual_seed(0)
    return DynamicMoE(DIM, num_experts, k, **kwargs)


def route_by_input(moe: DynamicMoE) -> None:
    """Make the gate's clean logits equal 10 * x[:E] so the input decides the routing."""
    e = moe.num_experts
    with torch.no_grad():
        trunk = moe.gate.trunk[0]
        trunk.weight.zero_()
        trunk.weight[:e, :e] = torch.eye(e)
        trunk.bias.zero_()
        moe.gate.clean.weight.zero_()
        moe.gate.clean.weight[:, :e] = 10 * torch.eye(e)
        moe.gate.clean.bias.zero_()


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_each_row_has_exactly_k_nonzero_gates_summing_to_one(k, training):
    moe = make_moe(k=k).train(training)
    _, aux = moe(torch.randn(32, DIM))
    assert aux.gates.shape == (32, 8)
    assert ((aux.gates > 0).sum(1) == k).all()
    torch.testing.assert_close(aux.gates.sum(1), torch.ones(32))


def test_indices_are_the_nonzero_gates_highest_first():
    moe = make_moe(k=3).eval()
    _, aux = moe(torch.randn(10, DIM))
    assert aux.indices.dtype == torch.long and aux.indices.shape == (10, 3)
    chosen = aux.gates.gather(1, aux.indices)
    assert (chosen > 0).all()
    assert (chosen[:, :-1] >= chosen[:, 1:]).all()


def test_eval_forward_is_deterministic():
    moe = make_moe().eval()
    x = torch.randn(8, DIM)
    y1, aux1 = moe(x)
    y2, aux2 = moe(x)
    assert torch.equal(y1, y2)
    assert torch.equal(aux1.gates, aux2.gates)


def test_training_routing_is_noisy():
    moe = make_moe().train()
    x = torch.randn(64, DIM)
    _, aux1 = moe(x)
    _, aux2 = moe(x)
    assert not torch.equal(aux1.gates, aux2.gates)


def test_balance_loss_is_much_lower_for_balanced_than_collapsed_routing():
    moe = make_moe().train()
    route_by_input(moe)
    rows = torch.arange(64)
    balanced = torch.zeros(64, DIM)
    balanced[rows, rows % 8] = 5.0  # row i prefers experts i%8 and (i+1)%8
    balanced[rows, (rows + 1) % 8] = 4.0
    collapsed = torch.zeros(64, DIM)
    collapsed[:, 0], collapsed[:, 1] = 5.0, 4.0  # every row prefers experts 0 and 1

    _, aux_balanced = moe(balanced)
    _, aux_collapsed = moe(collapsed)

    assert aux_balanced.balance_loss.ndim == 0
    assert aux_balanced.balance_loss < 0.05
    # Importance is nearly one-hot (CV^2 ~ 7), load sits on 2 of 8 experts (CV^2 = 3).
    assert aux_collapsed.balance_loss > 9.0


def test_balance_loss_sends_gradient_to_noise_logits_through_the_load_estimate():
    moe = make_moe().train()
    _, aux = moe(torch.randn(32, DIM))
    aux.balance_loss.backward()
    # Only the smooth (normal CDF) load estimate depends on the noise scale.
    assert moe.gate.noise.weight.grad.abs().sum() > 0


def test_gradients_reach_the_gate_and_every_selected_expert_only():
    moe = make_moe().train()
    y, aux = moe(torch.randn(3, DIM))
    (y.pow(2).sum() + aux.balance_loss).backward()

    for name, param in moe.gate.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    selected = set(aux.indices.flatten().tolist())
    bank = moe.experts
    for e in range(moe.num_experts):
        grads = [
            p.grad[e].abs().sum() for p in (bank.fc1_weight, bank.fc2_weight, bank.norm_weight)
        ]
        if e in selected:
            assert all(g > 0 for g in grads), f"selected expert {e} got no gradient"
        else:
            assert all(g == 0 for g in grads), f"unselected expert {e} got a gradient"


def test_k1_gives_each_row_one_expert_with_gate_one():
    moe = make_moe(k=1).train()
    _, aux = moe(torch.randn(16, DIM))
    assert aux.indices.shape == (16, 1)
    torch.testing.assert_close(aux.gates.gather(1, aux.indices), torch.ones(16, 1))
    assert torch.isfinite(aux.balance_loss)


def test_k_equal_to_num_experts_uses_every_expert_with_finite_loss_and_gradients():
    moe = make_moe(num_experts=4, k=4).train()
    y, aux = moe(torch.randn(16, DIM))
    assert (aux.gates > 0).all()
    (y.sum() + aux.balance_loss).backward()
    assert torch.isfinite(aux.balance_loss)
    assert all(torch.isfinite(p.grad).all() for p in moe.parameters() if p.grad is not None)


def test_single_expert_has_zero_balance_loss():
    moe = make_moe(num_experts=1, k=1).train()
    y, aux = moe(torch.randn(4, DIM))
    assert aux.balance_loss.item() == 0.0
    assert torch.isfinite(y).all()


def test_cv_squared_is_zero_for_uniform_and_e_minus_one_for_one_hot():
    assert cv_squared(torch.full((8,), 3.0)).item() == 0.0
    one_hot = torch.zeros(8)
    one_hot[2] = 5.0
    assert cv_squared(one_hot).item() == pytest.approx(7.0)


def test_output_is_the_input_plus_a_gated_residual():
    moe = make_moe().eval()
    with torch.no_grad():
        for p in (moe.experts.fc2_weight, moe.experts.fc2_bias):
            p.zero_()
    x = torch.randn(5, DIM)
    y, _ = moe(x)
    torch.testing.assert_close(y, x)


@pytest.mark.parametrize(("num_experts", "k"), [(0, 1), (4, 0), (4, 5)])
def test_invalid_expert_count_or_k_is_refused(num_experts, k):
    with pytest.raises(ValueError, match=r"num_experts|k must"):
        DynamicMoE(DIM, num_experts, k)


def test_eval_forward_exports_with_torch_export():
    moe = make_moe().eval()
    x = torch.randn(4, DIM)
    exported = torch.export.export(moe, (x,))
    y, aux = exported.module()(x)
    y_ref, aux_ref = moe(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(aux.gates, aux_ref.gates)


def test_gate_and_expert_hidden_sizes_are_honoured():
    moe = make_moe(expert_hidden=32, gate_hidden=24)
    assert moe.experts.fc1_weight.shape == (8, DIM, 32)
    assert moe.gate.trunk[0].out_features == 24

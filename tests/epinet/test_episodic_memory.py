import math

import pytest
import torch

from epinet import EpisodicMemory, class_balanced_top, decayed_salience


def offer(mem, ids, r0, y=None, t=0, now=0.0, alpha=0.0):
    """Admit items whose raw input is their id, so survivors can be identified."""
    ids = torch.as_tensor(ids, dtype=torch.float32)
    n = ids.numel()
    y = torch.zeros(n, dtype=torch.long) if y is None else torch.as_tensor(y)
    mem.admit(ids.view(n, 1), torch.randn(n, 2), torch.as_tensor(r0, dtype=torch.float32), y, t, now, alpha)


def stored_ids(mem):
    return mem.x[: len(mem), 0].tolist()


def sequential_reference(batches, capacity, alpha):
    """The notebook's EpisodicMemory.add, one sample at a time (lists, no vectorisation)."""
    slots = []  # [id, r0, tau]
    for now, ids, r0s in batches:
        for i, r0 in zip(ids, r0s):
            if len(slots) < capacity:
                slots.append([i, r0, now])
                continue
            sal = [s[1] * math.exp(-alpha * (now - s[2])) for s in slots]
            low = min(sal)
            if r0 <= low:
                continue
            slots[sal.index(low)] = [i, r0, now]
    return slots


def test_appends_in_batch_order_while_under_capacity():
    mem = EpisodicMemory(capacity=4, input_shape=(1,), latent_dim=2)
    offer(mem, [10, 11, 12], [0.5, 0.1, 0.9])
    assert stored_ids(mem) == [10, 11, 12]
    assert mem.r0[:3].tolist() == pytest.approx([0.5, 0.1, 0.9])


def test_batch_larger_than_free_space_fills_then_replaces_the_weakest():
    mem = EpisodicMemory(capacity=3, input_shape=(1,), latent_dim=2)
    offer(mem, [0, 1, 2, 3, 4], [1.0, 2.0, 3.0, 0.5, 2.5])
    # 0,1,2 appended; 3 (0.5) loses to everything; 4 (2.5) evicts 0 (1.0).
    assert sorted(stored_ids(mem)) == [1, 2, 4]


def test_newcomer_must_be_strictly_more_salient_to_evict():
    mem = EpisodicMemory(capacity=2, input_shape=(1,), latent_dim=2)
    offer(mem, [0, 1], [1.0, 2.0])
    offer(mem, [2], [1.0])
    assert stored_ids(mem) == [0, 1]
    offer(mem, [3], [1.01])
    assert stored_ids(mem) == [3, 1]


def test_decay_changes_who_is_evicted():
    # A: r0 = 10 stored at t=0; B: r0 = 2 stored at t=9. At t=10 a newcomer with r0 = 3 arrives.
    def run(alpha):
        mem = EpisodicMemory(capacity=2, input_shape=(1,), latent_dim=2)
        offer(mem, [0], [10.0], now=0.0, alpha=alpha)
        offer(mem, [1], [2.0], now=9.0, alpha=alpha)
        offer(mem, [2], [3.0], now=10.0, alpha=alpha)
        return stored_ids(mem)

    assert run(alpha=0.0) == [0, 2]  # no decay: B (2) is the weakest
    # decay: A is 10 e^-10 ~ 4.5e-4 < B's 2 e^-1 ~ 0.74, so the old high-r0 memory goes
    assert run(alpha=1.0) == [2, 1]


def test_newcomers_are_stamped_with_now():
    mem = EpisodicMemory(capacity=2, input_shape=(1,), latent_dim=2)
    offer(mem, [0, 1], [1.0, 1.0], now=7.0)
    offer(mem, [2], [5.0], now=9.0, alpha=0.1)
    assert mem.tau.tolist() == [9.0, 7.0]
    torch.testing.assert_close(mem.salience(9.0, 0.1), torch.tensor([5.0, math.exp(-0.2)]))


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_admission_equals_sequential_rule_on_distinct_saliences(seed):
    g = torch.Generator().manual_seed(seed)
    capacity, alpha = 7, 0.05
    mem = EpisodicMemory(capacity=capacity, input_shape=(1,), latent_dim=2)
    batches, next_id = [], 0
    for step in range(8):
        b = int(torch.randint(1, 12, (1,), generator=g))
        ids = list(range(next_id, next_id + b))
        next_id += b
        r0 = (torch.rand(b, generator=g) * 3).tolist()
        batches.append((float(step * 3), ids, r0))
        offer(mem, ids, r0, now=float(step * 3), alpha=alpha)
        reference = sequential_reference(batches, capacity, alpha)
        assert sorted(stored_ids(mem)) == sorted(s[0] for s in reference)
        # Identity of each survivor: its r0 and tau travel with it.
        by_id = {s[0]: s for s in reference}
        for slot, i in enumerate(stored_ids(mem)):
            assert mem.r0[slot].item() == pytest.approx(by_id[i][1])
            assert mem.tau[slot].item() == by_id[i][2]


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_admission_keeps_the_sequential_saliences_under_ties(seed):
    # r0 from {1, 2, 3} without decay: many ties. Which of two equal memories
    # survives may differ (documented), the multiset of saliences may not.
    g = torch.Generator().manual_seed(seed)
    capacity = 6
    mem = EpisodicMemory(capacity=capacity, input_shape=(1,), latent_dim=2)
    batches, next_id = [], 0
    for step in range(6):
        b = int(torch.randint(1, 10, (1,), generator=g))
        ids = list(range(next_id, next_id + b))
        next_id += b
        r0 = torch.randint(1, 4, (b,), generator=g).float().tolist()
        batches.append((float(step), ids, r0))
        offer(mem, ids, r0, now=float(step), alpha=0.0)
        reference = sequential_reference(batches, capacity, 0.0)
        assert sorted(mem.r0[: len(mem)].tolist()) == sorted(s[1] for s in reference)


def test_ties_keep_the_stored_memory_and_the_earlier_newcomer():
    mem = EpisodicMemory(capacity=2, input_shape=(1,), latent_dim=2)
    offer(mem, [0, 1], [1.0, 2.0])
    offer(mem, [2, 3, 4], [2.0, 2.0, 2.0])
    assert stored_ids(mem) == [2, 1]


def test_class_balanced_flood_cannot_push_old_class_below_quota():
    mem = EpisodicMemory(capacity=10, input_shape=(1,), latent_dim=2, class_balanced=True)
    offer(mem, range(10), torch.linspace(0.1, 1.0, 10), y=[0] * 10)
    for step in range(3):  # a flood of much more salient class-1 items
        offer(mem, range(100 + 20 * step, 120 + 20 * step), torch.full((20,), 50.0), y=[1] * 20)
    labels = mem.y.tolist()
    assert labels.count(0) == 5 and labels.count(1) == 5
    # class 0 kept its five most salient members (ids 5..9)
    assert sorted(i for i, lab in zip(stored_ids(mem), labels) if lab == 0) == [5, 6, 7, 8, 9]


def test_without_balancing_the_same_flood_erases_the_old_class():
    mem = EpisodicMemory(capacity=10, input_shape=(1,), latent_dim=2)
    offer(mem, range(10), torch.linspace(0.1, 1.0, 10), y=[0] * 10)
    offer(mem, range(100, 120), torch.full((20,), 50.0), y=[1] * 20)
    assert mem.y.tolist() == [1] * 10


def test_class_balanced_fills_unused_quota_with_most_salient_leftovers():
    # capacity 9, three classes present -> quota 3; class 2 has one item, so two slots go to leftovers.
    salience = torch.tensor([9.0, 8, 7, 6, 5, 1, 1.5, 0.5, 4.0, 3.0, 2.0])
    labels = torch.tensor([0, 0, 0, 0, 0, 2, 1, 1, 1, 1, 1])
    keep = class_balanced_top(salience, labels, 9)
    assert keep.sum() == 9
    # quota: class0 {9,8,7}, class1 {4,3,2}, class2 {1}; leftovers by salience: 6, 5
    assert sorted(salience[keep].tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_class_balanced_ties_go_to_lower_indices():
    salience = torch.ones(4)
    labels = torch.tensor([0, 0, 1, 1])
    # quota 1 per class: the first of each; the one leftover slot: the lowest remaining index.
    assert class_balanced_top(salience, labels, 2).tolist() == [True, False, True, False]
    assert class_balanced_top(salience, labels, 3).tolist() == [True, True, True, False]


def balanced_reference(salience, labels, k):
    """class_balanced_top's rule, item by item: each class's top k // n_classes, then the
    most salient leftovers; ties to lower indices."""
    order = sorted(range(len(salience)), key=lambda i: (-salience[i], i))
    classes = set(labels)
    keep = set()
    for c in classes:
        keep |= set([i for i in order if labels[i] == c][: k // len(classes)])
    for i in order:
        if len(keep) == k:
            break
        keep.add(i)
    return [i in keep for i in range(len(salience))]


@pytest.mark.parametrize("seed", range(12))
def test_class_balanced_top_equals_the_rule_item_by_item(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(5, 80, (1,), generator=g))
    k = int(torch.randint(1, n + 1, (1,), generator=g))
    # Even seeds: many ties. Odd seeds: sparse and negative keys (renumbered, not indexed).
    salience = torch.randint(0, 4, (n,), generator=g).float() if seed % 2 == 0 else torch.rand(n, generator=g)
    labels = torch.randint(0, 6, (n,), generator=g) * (1 if seed % 2 == 0 else -1000)
    keep = class_balanced_top(salience, labels, k)
    assert keep.tolist() == balanced_reference(salience.tolist(), labels.tolist(), k)


def test_class_balanced_top_takes_bfloat16_salience():
    salience = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.bfloat16)
    labels = torch.tensor([0, 0, 1, 1])
    assert class_balanced_top(salience, labels, 2).tolist() == [False, True, False, True]


def test_class_balanced_replaces_slots_of_dropped_items_only():
    mem = EpisodicMemory(capacity=4, input_shape=(1,), latent_dim=2, class_balanced=True)
    offer(mem, [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0], y=[0, 0, 0, 0])
    offer(mem, [10, 11, 12], [0.5, 9.0, 0.2], y=[1, 1, 1])
    # quota 2 each: class 0 keeps 3 and 4 (ids 2, 3); class 1 keeps 9.0 and 0.5 (ids 11, 10)
    assert stored_ids(mem)[2:] == [2, 3]
    assert sorted(stored_ids(mem)[:2]) == [10, 11]


def test_sample_is_uniform_without_replacement_and_capped():
    mem = EpisodicMemory(capacity=8, input_shape=(1,), latent_dim=2)
    offer(mem, range(5), torch.ones(5), y=[0, 1, 2, 3, 4], t=3)
    x, y, t = mem.sample(100, generator=torch.Generator().manual_seed(0))
    assert sorted(x[:, 0].tolist()) == [0, 1, 2, 3, 4]
    assert torch.equal(x[:, 0].long(), y)
    assert t.tolist() == [3] * 5
    a = mem.sample(3, generator=torch.Generator().manual_seed(1))[0]
    b = mem.sample(3, generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, b) and a[:, 0].unique().numel() == 3


def test_reencode_refreshes_latents_and_unit_keys_in_eval_mode():
    mem = EpisodicMemory(capacity=4, input_shape=(3,), latent_dim=2)
    mem.admit(torch.randn(3, 3), torch.randn(3, 2), torch.ones(3), torch.zeros(3, dtype=torch.long), 0, 0.0, 0.0)
    encoder = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5))
    encoder.train()
    mem.reencode(encoder, batch_size=2)
    expected = encoder[0](mem.x[:3]).detach()
    torch.testing.assert_close(mem.z[:3], expected)
    torch.testing.assert_close(mem.c[:3], torch.nn.functional.normalize(expected, dim=1))
    assert mem.z[3].abs().sum() == 0  # unused slot untouched
    assert encoder.training and encoder[1].training


def test_stored_keys_are_unit_latents():
    mem = EpisodicMemory(capacity=2, input_shape=(1,), latent_dim=2)
    mem.admit(
        torch.zeros(1, 1), torch.tensor([[3.0, 4.0]]), torch.ones(1), torch.zeros(1, dtype=torch.long), 0, 0.0, 0.0
    )
    torch.testing.assert_close(mem.c[0], torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(mem.z[0], torch.tensor([3.0, 4.0]))


def test_nbytes_len_and_clear():
    mem = EpisodicMemory(capacity=10, input_shape=(1,), latent_dim=2)
    # x 10*4 + z,c 2*10*2*4 + r0 10*4 + tau,y,t,e 4*10*8 + size 8
    assert mem.nbytes == 40 + 160 + 40 + 320 + 8
    offer(mem, [1, 2], [1.0, 1.0])
    assert len(mem) == 2
    mem.clear()
    assert len(mem) == 0 and mem.r0.abs().sum() == 0


def test_buffers_follow_dtype_and_state_dict():
    mem = EpisodicMemory(capacity=3, input_shape=(1,), latent_dim=2)
    offer(mem, [1, 2], [1.0, 2.0], y=[4, 5], now=3.0)
    copy = EpisodicMemory(capacity=3, input_shape=(1,), latent_dim=2)
    copy.load_state_dict(mem.state_dict())
    assert len(copy) == 2 and torch.equal(copy.y, mem.y) and torch.equal(copy.tau, mem.tau)
    mem.to(torch.float64)
    assert mem.x.dtype == mem.z.dtype == mem.r0.dtype == torch.float64
    assert mem.y.dtype == mem.size.dtype == torch.long


def test_rejects_mismatched_shapes():
    mem = EpisodicMemory(capacity=3, input_shape=(1, 28, 28), latent_dim=2)
    with pytest.raises(ValueError, match=r"x has item shape \(28, 28\), memory stores \(1, 28, 28\)"):
        mem.admit(
            torch.zeros(2, 28, 28), torch.zeros(2, 2), torch.ones(2), torch.zeros(2, dtype=torch.long), 0, 0.0, 0.0
        )
    with pytest.raises(ValueError, match=r"r0 has shape"):
        mem.admit(
            torch.zeros(2, 1, 28, 28), torch.zeros(2, 2), torch.ones(3), torch.zeros(2, dtype=torch.long), 0, 0.0, 0.0
        )


def test_salience_matches_decay_formula():
    mem = EpisodicMemory(capacity=3, input_shape=(1,), latent_dim=2)
    offer(mem, [0], [2.0], now=1.0)
    offer(mem, [1], [4.0], now=3.0)
    torch.testing.assert_close(mem.salience(5.0, 0.2), decayed_salience(mem.r0[:2], mem.tau[:2], 5.0, 0.2))
    torch.testing.assert_close(mem.salience(5.0, 0.2), torch.tensor([2.0 * math.exp(-0.8), 4.0 * math.exp(-0.4)]))


@pytest.mark.parametrize(
    "capacity, input_shape, latent_dim, dtype",
    [
        (1, (1,), 2, None),
        (500, (1, 28, 28), 128, None),
        (37, (3, 32, 32), 16, None),
        (20, (1, 28, 28), 8, torch.float64),
    ],
)
def test_planned_nbytes_equals_nbytes_of_the_memory_built(capacity, input_shape, latent_dim, dtype):
    planned = EpisodicMemory.planned_nbytes(capacity, input_shape, latent_dim, dtype)
    mem = EpisodicMemory(capacity, input_shape, latent_dim)
    if dtype is not None:
        mem.to(dtype)
    assert planned == mem.nbytes


def test_planned_nbytes_needs_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from epinet.memory_layout import planned_nbytes; planned_nbytes(5, (1, 28, 28), 4);"
        " assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_split_draw_takes_its_share_from_the_recent_origin_and_tops_up_short_groups():
    memory = EpisodicMemory(10, (1, 2, 2), 3, store_keys=False)
    for origin, count in ((0, 6), (1, 4)):
        memory.admit(
            torch.randn(count, 1, 2, 2),
            torch.randn(count, 3),
            torch.ones(count),
            torch.zeros(count, dtype=torch.long),
            0,
            0.0,
            0.0,
            origin=origin,
        )
    older, recent = set(range(6)), set(range(6, 10))
    torch.manual_seed(0)
    for n, share, n_recent in ((4, 0.5, 2), (5, 0.2, 1), (6, 1.0, 4), (8, 0.0, 2), (20, 0.5, 4)):
        slots = memory.sample_slots_split(n, recent=1, share=share).tolist()
        assert len(slots) == len(set(slots)) == min(n, 10)  # without replacement
        assert len(set(slots) & recent) == n_recent and set(slots) <= older | recent
    # No memory of that origin (or only memories of it): a uniform draw over all.
    assert len(memory.sample_slots_split(4, recent=2, share=0.5)) == 4

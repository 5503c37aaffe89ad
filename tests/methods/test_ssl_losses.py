"""Every SSL loss against a naive, loop-by-loop reference written from the paper's equation."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_robustbench.losses import (
    barlow_twins_loss,
    byol_loss,
    dino_loss,
    info_nce,
    negative_cosine,
    sinkhorn,
    swav_loss,
    updated_center,
    vicreg_loss,
)

torch.manual_seed(0)


def unit(v):
    return v / math.sqrt(sum(float(a) ** 2 for a in v))


def dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def softmax(v, t):
    e = [math.exp(float(a) / t) for a in v]
    return [a / sum(e) for a in e]


def test_info_nce_matches_naive():
    q, k, queue = torch.randn(5, 8), torch.randn(5, 8), torch.randn(11, 8)
    total = 0.0
    for i in range(5):
        pos = dot(unit(q[i]), unit(k[i])) / 0.2
        negs = [dot(unit(q[i]), unit(queue[j])) / 0.2 for j in range(11)]
        total += -pos + math.log(math.exp(pos) + sum(math.exp(n) for n in negs))
    assert float(info_nce(q, k, queue, temperature=0.2)) == pytest.approx(total / 5, rel=1e-5)


def test_cosine_losses_match_naive_and_stop_the_target_gradient():
    p, z = torch.randn(6, 10, requires_grad=True), torch.randn(6, 10, requires_grad=True)
    cos = [dot(unit(p[i].detach()), unit(z[i].detach())) for i in range(6)]
    assert negative_cosine(p, z).item() == pytest.approx(-sum(cos) / 6, rel=1e-5)
    assert byol_loss(p, z).item() == pytest.approx(sum(2 - 2 * c for c in cos) / 6, rel=1e-5)
    byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None


def test_dino_loss_matches_naive():
    student = [torch.randn(4, 7) for _ in range(4)]  # 2 global + 2 local
    teacher = [torch.randn(4, 7) for _ in range(2)]
    center = torch.randn(7) * 0.1
    total, pairs = 0.0, 0
    for iq in range(2):
        for v in range(4):
            if v == iq:
                continue
            for b in range(4):
                q = softmax([teacher[iq][b, k] - center[k] for k in range(7)], 0.04)
                p = softmax(student[v][b], 0.1)
                total += -sum(q[k] * math.log(p[k]) for k in range(7)) / 4
            pairs += 1
    assert float(dino_loss(student, teacher, center, student_temp=0.1, teacher_temp=0.04)) == pytest.approx(
        total / pairs, rel=1e-4)
    new = updated_center(center, teacher, momentum=0.9)
    expected = [0.9 * float(center[k]) + 0.1 * sum(float(t[b, k]) for t in teacher for b in range(4)) / 8
                for k in range(7)]
    assert new.tolist() == pytest.approx(expected, rel=1e-5)


def test_barlow_twins_matches_naive():
    z1, z2 = torch.randn(9, 5), torch.randn(9, 5)

    def standardize(z):
        cols = []
        for j in range(5):
            col = [float(z[b, j]) for b in range(9)]
            m = sum(col) / 9
            s = math.sqrt(sum((c - m) ** 2 for c in col) / 9)
            cols.append([(c - m) / s for c in col])
        return cols

    a, b = standardize(z1), standardize(z2)
    loss = 0.0
    for i in range(5):
        for j in range(5):
            c = sum(a[i][n] * b[j][n] for n in range(9)) / 9
            loss += (1 - c) ** 2 if i == j else 5e-3 * c**2
    assert float(barlow_twins_loss(z1, z2, lambd=5e-3)) == pytest.approx(loss, rel=1e-4)


def test_vicreg_matches_naive():
    x, y = torch.randn(8, 4), torch.randn(8, 4) * 0.5
    n, d = 8, 4
    inv = sum((float(x[i, j]) - float(y[i, j])) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def var_cov(z):
        cols = [[float(z[i, j]) for i in range(n)] for j in range(d)]
        means = [sum(c) / n for c in cols]
        cent = [[v - means[j] for v in cols[j]] for j in range(d)]
        std = [math.sqrt(sum(v * v for v in c) / (n - 1) + 1e-4) for c in cent]
        var = sum(max(0.0, 1 - s) for s in std) / d
        cov = sum((sum(cent[a][i] * cent[b][i] for i in range(n)) / (n - 1)) ** 2
                  for a in range(d) for b in range(d) if a != b) / d
        return var, cov

    (vx, cx), (vy, cy) = var_cov(x), var_cov(y)
    expected = 25 * inv + 25 * (vx / 2 + vy / 2) + 1 * (cx + cy)
    assert float(vicreg_loss(x, y)) == pytest.approx(expected, rel=1e-4)


def test_sinkhorn_equipartitions_and_matches_naive():
    scores = torch.randn(6, 3)
    q = sinkhorn(scores, epsilon=0.5, iterations=3)
    # naive: the same alternating normalisation, element by element
    m = [[math.exp(float(scores[b, k]) / 0.5) for b in range(6)] for k in range(3)]
    total = sum(map(sum, m))
    m = [[v / total for v in row] for row in m]
    for _ in range(3):
        m = [[v / sum(row) / 3 for v in row] for row in m]
        cols = [sum(m[k][b] for k in range(3)) for b in range(6)]
        m = [[m[k][b] / cols[b] / 6 for b in range(6)] for k in range(3)]
    naive = [[m[k][b] * 6 for k in range(3)] for b in range(6)]
    assert q.tolist() == [pytest.approx(row, rel=1e-5) for row in naive]
    assert q.sum(1).tolist() == pytest.approx([1.0] * 6, rel=1e-5)
    many = sinkhorn(torch.randn(12, 4), epsilon=0.5, iterations=50)
    assert many.sum(0).tolist() == pytest.approx([3.0] * 4, rel=1e-3)  # each prototype gets B / K


def test_swav_loss_matches_naive():
    scores = [torch.randn(5, 3) for _ in range(3)]  # 2 global + 1 local
    total, pairs = 0.0, 0
    for i in range(2):
        q = sinkhorn(scores[i], epsilon=0.05, iterations=3)
        for v in range(3):
            if v == i:
                continue
            for b in range(5):
                p = softmax(scores[v][b], 0.1)
                total += -sum(float(q[b, k]) * math.log(p[k]) for k in range(3)) / 5
            pairs += 1
    assert float(swav_loss(scores, temperature=0.1)) == pytest.approx(total / pairs, rel=1e-4)


def test_swav_queue_joins_the_sinkhorn_problem():
    scores = [torch.randn(4, 3) for _ in range(2)]
    queued = [torch.randn(8, 3) for _ in range(2)]
    with_queue = swav_loss(scores, queued=queued)
    total, pairs = 0.0, 0
    for i in range(2):
        q = sinkhorn(torch.cat([queued[i], scores[i]]))[8:]
        p = torch.log_softmax(scores[1 - i] / 0.1, dim=1)
        total += float(-(q * p).sum(1).mean())
        pairs += 1
    assert float(with_queue) == pytest.approx(total / pairs, rel=1e-5)
    assert float(with_queue) != pytest.approx(float(swav_loss(scores)), rel=1e-3)

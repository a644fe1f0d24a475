"""The Graph Image Prior network (GIP; Zhongsen Li et al., arXiv 2403.15770), vectorised: ``T`` per-frame CNNs as
one grouped convolution network, then a graph neural network over frames whose per-(node, neighbour) convolutions
are one grouped convolution over gathered neighbour features. The reference's Python loops over frames and
neighbours are kept as ``forward_loop`` (same weights, same outputs) for verification and the speed comparison.
The fit (stages, ADMM) is :func:`deepprior.mri.gip.gip`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError


def _init(t: Tensor) -> Tensor:
    with torch.no_grad():
        return t.normal_(0.0, 0.02)  # the reference's weight_init: N(0, 0.02²) weights, zero biases


class GroupedConv(nn.Module):
    """``groups`` independent ``cin → cout`` k×k convolutions (one per frame) as one grouped conv on
    ``(1, groups·cin, H, W)``. ``weight[g]`` is frame g's kernel."""

    def __init__(self, groups: int, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.groups, self.cin, self.cout, self.k = groups, cin, cout, k
        self.weight = nn.Parameter(_init(torch.empty(groups, cout, cin, k, k)))
        self.bias = nn.Parameter(torch.zeros(groups, cout))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.reshape(-1, self.cin, self.k, self.k), self.bias.reshape(-1),
                        padding=self.k // 2, groups=self.groups)

    def one(self, g: int, x: Tensor) -> Tensor:
        """Frame ``g``'s convolution alone (the frame-loop path)."""
        return F.conv2d(x, self.weight[g], self.bias[g], padding=self.k // 2)


class NeighbourConv(nn.Module):
    """``h_i = mean_k (W_ik ⋆ x_{n(i,k)} + b_ik)`` for every node i and neighbour slot k, as one grouped
    convolution: gather the K neighbours' ``cin`` channels per node, convolve with ``[W_i1 … W_iK] / K``."""

    def __init__(self, nodes: int, k: int, cin: int, cout: int):
        super().__init__()
        self.nodes, self.k, self.cin, self.cout = nodes, k, cin, cout
        self.weight = nn.Parameter(_init(torch.empty(nodes, k, cout, cin, 3, 3)))
        self.bias = nn.Parameter(torch.zeros(nodes, k, cout))

    def forward(self, x: Tensor, nn_idx: Tensor) -> Tensor:  # x (T, cin, H, W), nn_idx (T, K)
        t, _, h, w = x.shape
        # index_select, not x[idx]: the backward of advanced indexing accumulates the repeated rows (a frame
        # that neighbours many frames) with per-thread atomic adds on the CPU, in an order that varies from run
        # to run; index_select's backward (index_add_) sums them in a fixed order — bit-reproducible fits.
        gathered = torch.index_select(x, 0, nn_idx.reshape(-1)).reshape(1, t * self.k * self.cin, h, w)
        wt = self.weight.permute(0, 2, 1, 3, 4, 5).reshape(t * self.cout, self.k * self.cin, 3, 3) / self.k
        out = F.conv2d(gathered, wt, self.bias.mean(1).reshape(-1), padding=1, groups=t)
        return out.reshape(t, self.cout, h, w)

    def forward_loop(self, x: Tensor, nn_idx: Tensor) -> Tensor:
        out = []
        for i in range(x.shape[0]):
            hs = [F.conv2d(x[int(nn_idx[i, k])][None], self.weight[i, k], self.bias[i, k], padding=1)
                  for k in range(self.k)]
            out.append(torch.cat(hs).mean(0, keepdim=True))
        return torch.cat(out)


def _sizes(z: int, hw: tuple[int, int]) -> list[tuple[int, int]]:
    """Doubling sizes from a ``z``-pixel seed up to ``hw`` (the last is exactly ``hw``)."""
    n = max(1, math.ceil(math.log2(max(hw) / z)))
    return [(max(1, round(hw[0] / 2 ** (n - i))), max(1, round(hw[1] / 2 ** (n - i)))) for i in range(1, n + 1)]


class GIPNet(nn.Module):
    """The GIP network for ``frames`` frames of size ``hw``.

    Generators: conv3×3 ``ch_z → 16·ch`` at the seed, then per upsampling (bilinear ×2) a block
    ``conv3×3 → ELU → InstanceNorm`` with channels halving 8·ch, 4·ch, … down to ``ch``, then two more
    blocks of ``ch`` at the image size (the reference: 384 → 192, 96, 48, 24 up to 128², then 24, 24),
    and a per-frame 1×1 head to 2 channels for the first stage. GNN as in the module docstring.

    >>> net = GIPNet(4, (20, 24), ch=4, k=2)
    >>> z = torch.randn(1, 8, 8, 8)
    >>> net(z).shape, net(z, stage="cnn").shape
    (torch.Size([4, 2, 20, 24]), torch.Size([4, 2, 20, 24]))
    """

    def __init__(self, frames: int, hw: tuple[int, int], *, ch: int = 24, ch_z: int = 8, z_size: int = 8, k: int = 7):
        super().__init__()
        if not 1 <= k <= frames:
            raise ConfigError(f"the graph needs 1 ≤ K ≤ frames, got K = {k} for {frames} frames")
        if ch < 2 or ch % 2:
            raise ConfigError(f"GIP feature channels must be an even number ≥ 2, got {ch}")
        self.frames, self.hw, self.ch, self.ch_z, self.z_size, self.k = frames, tuple(hw), ch, ch_z, z_size, k
        t = frames
        self.sizes = _sizes(z_size, self.hw)
        widths = [max(ch, 16 * ch // 2 ** (i + 1)) for i in range(len(self.sizes))]
        self.stem = GroupedConv(t, ch_z, 16 * ch)
        chans = [16 * ch, *widths, ch, ch]
        self.blocks = nn.ModuleList(GroupedConv(t, chans[i], chans[i + 1]) for i in range(len(chans) - 1))
        self.head = GroupedConv(t, ch, 2, k=1)
        # GNN
        self.fen = nn.ModuleList()
        c, size = ch, min(self.hw)
        for kk, s in ((5, 3), (5, 3), (4, 2), (4, 2)):  # the reference's strided feature extractor
            if (size + 2 - kk) // s + 1 < 2:
                break
            self.fen.append(nn.Conv2d(c, ch // 2, kk, s, padding=1, bias=False))
            _init(self.fen[-1].weight)
            c, size = ch // 2, (size + 2 - kk) // s + 1
        self.agg = NeighbourConv(t, k, ch, ch)
        self.agg_norm = nn.BatchNorm2d(ch)
        self.upd0 = GroupedConv(t, ch, ch)
        self.upd = NeighbourConv(t, k, 2 * ch, ch)
        self.res = nn.ModuleList(GroupedConv(t, ch, ch) for _ in range(2))
        self.final = nn.Conv2d(ch, 2, 1)
        _init(self.final.weight)
        nn.init.zeros_(self.final.bias)
        self.register_buffer("nn_idx", None)

    # ---- stage 1: per-frame generators -------------------------------------------------------------
    def features(self, z: Tensor) -> Tensor:
        t = self.frames
        x = self.stem(z.expand(1, -1, -1, -1).repeat(1, t, 1, 1))
        for i, b in enumerate(self.blocks):
            if i < len(self.sizes):
                x = F.interpolate(x, size=self.sizes[i], mode="bilinear", align_corners=False)
            x = F.instance_norm(F.elu(b(x)))
        return x  # (1, T·ch, H, W)

    # ---- graph ----------------------------------------------------------------------------------------
    def graph(self, x: Tensor) -> Tensor:
        """K nearest neighbours (cosine similarity of FEN features of frame − temporal mean), self first."""
        f = x - x.mean(0, keepdim=True)
        for i, conv in enumerate(self.fen):
            f = conv(f)
            if i < len(self.fen) - 1:
                f = F.relu(f)
        return knn_graph(f.reshape(x.shape[0], -1), self.k)

    def gnn(self, x: Tensor, nn_idx: Tensor) -> Tensor:  # x (T, ch, H, W)
        t, c, h, w = x.shape
        hid = self.agg_norm(F.elu(self.agg(x, nn_idx)))
        xi = F.instance_norm(F.elu(self.upd0(x.reshape(1, t * c, h, w)))).reshape(t, c, h, w)
        out = F.elu(self.upd(torch.cat([xi, hid], 1), nn_idx))
        y = out.reshape(1, t * c, h, w)
        for r in self.res:
            y = F.instance_norm(F.elu(r(y))) + y
        return self.final(y.reshape(t, c, h, w))

    def forward(self, z: Tensor, stage: str = "gnn") -> Tensor:
        feats = self.features(z)
        t, c = self.frames, self.ch
        if stage == "cnn":
            return self.head(feats).reshape(t, 2, *self.hw)
        x = feats.reshape(t, c, *self.hw)
        nn_idx = self.nn_idx
        if nn_idx is None:
            with torch.no_grad():
                nn_idx = self.graph(x)
        return self.gnn(x, nn_idx)

    # ---- the reference's loops, same weights ---------------------------------------------------------
    def forward_loop(self, z: Tensor, stage: str = "gnn") -> Tensor:
        """The same network evaluated frame by frame and neighbour by neighbour, as the reference code
        does (for verification and the speed comparison; not used for fitting)."""
        t = self.frames
        feats = []
        for i in range(t):
            x = self.stem.one(i, z)
            for j, b in enumerate(self.blocks):
                if j < len(self.sizes):
                    x = F.interpolate(x, size=self.sizes[j], mode="bilinear", align_corners=False)
                x = F.instance_norm(F.elu(b.one(i, x)))
            feats.append(x)
        if stage == "cnn":
            return torch.cat([self.head.one(i, feats[i]) for i in range(t)])
        x = torch.cat(feats)
        nn_idx = self.nn_idx if self.nn_idx is not None else self.graph(x).detach()
        hid = self.agg_norm(torch.cat([F.elu(h) for h in self.agg.forward_loop(x, nn_idx).split(1)]))
        xi = torch.cat([F.instance_norm(F.elu(self.upd0.one(i, x[i:i + 1]))) for i in range(t)])
        out = F.elu(self.upd.forward_loop(torch.cat([xi, hid], 1), nn_idx))
        ys = []
        for i in range(t):
            y = out[i:i + 1]
            for r in self.res:
                y = F.instance_norm(F.elu(r.one(i, y))) + y
            ys.append(y)
        return self.final(torch.cat(ys))


def knn_graph(feat: Tensor, k: int) -> Tensor:
    """``(N, K)`` indices of each row's K most cosine-similar rows, the row itself first.

    >>> knn_graph(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), 2).tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    f = F.normalize(feat.reshape(feat.shape[0], -1), dim=1)
    sim = f @ f.T
    n = sim.shape[0]
    sim.fill_diagonal_(-math.inf)  # self goes first by construction, not by a similarity tie
    others = sim.topk(k - 1, dim=1).indices if k > 1 else sim.new_zeros((n, 0), dtype=torch.long)
    return torch.cat([torch.arange(n, device=feat.device)[:, None], others], 1)

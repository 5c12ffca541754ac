"""APLS: Average Path Length Similarity between two road graphs.

After SpaceNet (Van Etten et al., 2018). Control nodes are the graph's
nodes plus points every ``spacing_m`` along its edges. Each control node is
inserted into the other graph at the nearest point of an edge within
``buffer_m``. For every pair of connected control nodes the shortest path
length ``L`` in the first graph is compared with ``L'`` between the inserted
points in the second; a pair contributes ``min(1, |L - L'| / L)``, or 1 when
either node found no match or the second graph has no path. One direction
scores ``1 - mean``; APLS is the harmonic mean of both directions (truth to
proposal penalises missed roads, proposal to truth spurious ones).

Graphs are those of :func:`roadfeat.vectorize.lines_to_graph`: nodes at
pixel positions, edges with ``length`` (m) and ``rows``/``cols`` geometry.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _arc(rows, cols) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(rows), np.diff(cols)))])


def _oriented(u, v, d):
    """An edge's geometry from the end nearest ``u`` to the one nearest ``v``, with arc lengths."""
    rows, cols = d["rows"], d["cols"]
    if np.hypot(rows[0] - u[0], cols[0] - u[1]) > np.hypot(rows[0] - v[0], cols[0] - v[1]):
        rows, cols = rows[::-1], cols[::-1]
    return rows, cols, _arc(rows, cols)


def _point_at(rows, cols, arc, s):
    return float(np.interp(s, arc, rows)), float(np.interp(s, arc, cols))


def _split(g, cuts: dict, gsd: float):
    """Copy of ``g`` with nodes inserted at arc positions (px) ``cuts[(u, v)]``.

    Returns the graph and ``{(edge, s): node}`` for every inserted position.
    """
    import networkx as nx

    out = nx.Graph()
    out.add_nodes_from(g.nodes(data=True))
    where = {}
    for u, v, d in g.edges(data=True):
        rows, cols, arc = _oriented(u, v, d)
        total = arc[-1]
        prev, prev_s = u, 0.0
        for s in sorted(set(cuts.get((u, v), ()))):
            if s <= 0.5:
                where[(u, v), s] = u
                continue
            if s >= total - 0.5:
                where[(u, v), s] = v
                continue
            node = _point_at(rows, cols, arc, s)
            out.add_node(node, pos=node)
            out.add_edge(prev, node, length=(s - prev_s) * gsd)
            where[(u, v), s] = node
            prev, prev_s = node, s
        out.add_edge(prev, v, length=(total - prev_s) * gsd)
    return out, where


def _densify(g, spacing_px: float, gsd: float):
    """``g`` with control nodes every ``spacing_px`` along its edges; returns (graph, nodes)."""
    cuts = {}
    for u, v, d in g.edges(data=True):
        total = _arc(d["rows"], d["cols"])[-1]
        cuts[(u, v)] = list(np.arange(spacing_px, total - spacing_px / 2, spacing_px))
    dense, _ = _split(g, cuts, gsd)
    return dense, list(dense.nodes)


def _project(rows, cols, arc, p) -> float:
    """Arc position of the point of a polyline nearest to ``p``."""
    a = np.stack([rows[:-1], cols[:-1]], 1)
    d = np.stack([np.diff(rows), np.diff(cols)], 1)
    n2 = np.maximum((d * d).sum(1), 1e-12)
    t = np.clip(((np.asarray(p) - a) * d).sum(1) / n2, 0.0, 1.0)
    dist = np.hypot(*(a + t[:, None] * d - p).T)
    k = int(np.argmin(dist))
    return float(arc[k] + t[k] * np.sqrt(n2[k]))


def _insert(g, points, buffer_px: float, gsd: float):
    """Insert ``points`` into ``g`` at the nearest edge point within ``buffer_px``.

    Returns (graph, list of node or None per point).
    """
    samples, owner, geoms = [], [], []
    edges = list(g.edges(data=True))
    for i, (u, v, d) in enumerate(edges):
        rows, cols, arc = _oriented(u, v, d)
        geoms.append((rows, cols, arc))
        # Dense samples find the nearest edge; the position on it is then exact.
        s = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] * 2)) + 1))
        samples.append(np.stack([np.interp(s, arc, rows), np.interp(s, arc, cols)], 1))
        owner += [i] * len(s)
    if not samples or not points:
        return g, [None] * len(points)
    dist, idx = cKDTree(np.concatenate(samples)).query(np.asarray(points, float),
                                                       distance_upper_bound=buffer_px)
    cuts, hits = {}, []
    for p, dd, j in zip(points, dist, idx):
        if not np.isfinite(dd):
            hits.append(None)
            continue
        i = owner[j]
        s = _project(*geoms[i], p)
        key = edges[i][:2]
        cuts.setdefault(key, []).append(s)
        hits.append((key, s))
    out, where = _split(g, cuts, gsd)
    return out, [None if h is None else where[h] for h in hits]


def _one_way(a, b, gsd: float, spacing_px: float, buffer_px: float) -> float:
    import networkx as nx

    dense_a, controls = _densify(a, spacing_px, gsd)
    b2, matched = _insert(b, controls, buffer_px, gsd)
    terms = []
    for i, (src, src_b) in enumerate(zip(controls, matched)):
        la = nx.single_source_dijkstra_path_length(dense_a, src, weight="length")
        lb = (nx.single_source_dijkstra_path_length(b2, src_b, weight="length")
              if src_b is not None else {})
        for dst, dst_b in zip(controls[i + 1:], matched[i + 1:]):
            L = la.get(dst)
            if L is None or L <= 0:
                continue  # not connected in the first graph: no path to compare
            Lb = lb.get(dst_b) if dst_b is not None else None
            terms.append(1.0 if Lb is None else min(1.0, abs(L - Lb) / L))
    return 1.0 - float(np.mean(terms)) if terms else 1.0


def apls(truth, proposal, gsd: float, spacing_m: float = 50.0, buffer_m: float = 4.0) -> float:
    """APLS of ``proposal`` against ``truth`` (both road graphs), in [0, 1].

    Two empty graphs score 1; one empty graph against a non-empty one scores 0.
    """
    t_empty, p_empty = truth.number_of_edges() == 0, proposal.number_of_edges() == 0
    if t_empty or p_empty:
        return 1.0 if t_empty and p_empty else 0.0
    spacing_px, buffer_px = spacing_m / gsd, buffer_m / gsd
    forward = _one_way(truth, proposal, gsd, spacing_px, buffer_px)
    backward = _one_way(proposal, truth, gsd, spacing_px, buffer_px)
    if forward + backward == 0:
        return 0.0
    return 2 * forward * backward / (forward + backward)

"""Greedy decoding that computes a shared prompt prefix once and decodes its questions as one batch.

The N type-questions about one passage share everything up to the question turn (system, examples,
text turn, acknowledgement). :func:`greedy_shared_prefix` runs the model once over each distinct prefix
(a left-padded batch of prefixes), copies each prefix's KV cache to its question rows
(``Cache.reorder_cache`` with repeated row indices), appends the question suffixes (padded *between*
prefix and suffix, masked, with position ids that continue the prefix), then decodes greedily with
explicit stop tokens and ``max_new_tokens``. Finished rows are dropped from the batch as they stop.
With ``with_logprobs=True`` it also returns, for each generated token, the log-softmax of the logits it
was chosen from (the model's log-probability of that token; computed from the same greedy pass, no
second forward pass): the input of :func:`raitner_hub.scores.mention_score`.

The tokens fed for a row are exactly the tokens of its full prompt, at the same positions, with padding
masked out, so the result is the same as one-prompt-at-a-time greedy generation (tested token for token
in ``tests/test_predict.py``; only floating-point summation order can differ).

:func:`greedy_naive` is the baseline: ``model.generate`` on one full prompt at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PrefixGroup:
    """One shared prefix and the suffixes (question + generation prompt) that continue it."""

    prefix: tuple[int, ...]
    suffixes: tuple[tuple[int, ...], ...]


def split_shared_prefix(prompts: Sequence[Sequence[int]]) -> PrefixGroup:
    """Group full prompts by their longest common token prefix (each suffix keeps at least one token).

    Example:
        >>> split_shared_prefix([[1, 2, 3, 4], [1, 2, 5]])
        PrefixGroup(prefix=(1, 2), suffixes=((3, 4), (5,)))
    """
    if not prompts:
        raise ValueError("no prompts")
    first = prompts[0]
    common = min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        n = 0
        while n < common and prompt[n] == first[n]:
            n += 1
        common = n
    common = max(common, 0)
    return PrefixGroup(tuple(first[:common]), tuple(tuple(p[common:]) for p in prompts))


def _pack(groups: Sequence[PrefixGroup], batch_size: int) -> list[list[tuple[int, int, PrefixGroup]]]:
    """Batches of (group index, offset of first suffix, group piece) whose question rows fit ``batch_size``; big groups are split."""
    pieces: list[tuple[int, int, PrefixGroup]] = []  # (group index, offset of first suffix, piece)
    for gi, group in enumerate(groups):
        for start in range(0, len(group.suffixes), batch_size):
            pieces.append((gi, start, PrefixGroup(group.prefix, group.suffixes[start : start + batch_size])))
    batches: list[list[tuple[int, int, PrefixGroup]]] = []
    current: list[tuple[int, int, PrefixGroup]] = []
    rows = 0
    for piece in pieces:
        if current and rows + len(piece[2].suffixes) > batch_size:
            batches.append(current)
            current, rows = [], 0
        current.append(piece)
        rows += len(piece[2].suffixes)
    if current:
        batches.append(current)
    return batches


def greedy_shared_prefix(
    model,
    groups: Sequence[PrefixGroup],
    *,
    stop_ids: Sequence[int],
    pad_id: int,
    max_new_tokens: int = 256,
    batch_size: int = 32,
    with_logprobs: bool = False,
) -> list:
    """Greedy continuations (without the stop token) for every suffix of every group.

    Returns ``out[g][i]``: the generated token ids for ``groups[g].suffixes[i]``; with ``with_logprobs``,
    a :class:`Generated` (ids and each chosen token's log-probability) instead.
    """
    out: list[list] = [[None] * len(g.suffixes) for g in groups]
    for batch in _pack(groups, batch_size):
        results = _decode_batch(
            model,
            [piece for _, _, piece in batch],
            stop_ids=stop_ids,
            pad_id=pad_id,
            max_new_tokens=max_new_tokens,
            with_logprobs=with_logprobs,
        )
        for (gi, start, _piece), rows in zip(batch, results):
            for i, tokens in enumerate(rows):
                out[gi][start + i] = tokens
    return out


@dataclass(frozen=True)
class Generated:
    """One greedy continuation: token ids and the log-probability the model gave each chosen token."""

    tokens: tuple[int, ...]
    logprobs: tuple[float, ...]


def _decode_batch(
    model, groups: Sequence[PrefixGroup], *, stop_ids, pad_id, max_new_tokens, with_logprobs: bool = False
) -> list[list]:
    import torch

    device = model.device
    stop = torch.tensor(sorted(set(stop_ids)), device=device)
    # 1. All distinct prefixes at once, left-padded.
    plen = max(len(g.prefix) for g in groups)
    prefix_ids = torch.full((len(groups), plen), pad_id, dtype=torch.long, device=device)
    prefix_mask = torch.zeros((len(groups), plen), dtype=torch.long, device=device)
    for b, g in enumerate(groups):
        if g.prefix:
            prefix_ids[b, plen - len(g.prefix) :] = torch.tensor(g.prefix, device=device)
            prefix_mask[b, plen - len(g.prefix) :] = 1
    rows_of = torch.tensor([b for b, g in enumerate(groups) for _ in g.suffixes], device=device)
    with torch.inference_mode():
        cache = None
        if plen:
            positions = (prefix_mask.cumsum(-1) - 1).clamp(min=0)
            cache = model(
                input_ids=prefix_ids,
                attention_mask=prefix_mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
            ).past_key_values
            cache.reorder_cache(rows_of)  # copy each prefix's cache to its question rows
        mask = prefix_mask.index_select(0, rows_of)
        # 2. The question suffixes, padded between prefix and suffix (masked; positions continue the prefix).
        suffixes = [s for g in groups for s in g.suffixes]
        slen = max(len(s) for s in suffixes)
        suffix_ids = torch.full((len(suffixes), slen), pad_id, dtype=torch.long, device=device)
        suffix_mask = torch.zeros((len(suffixes), slen), dtype=torch.long, device=device)
        for r, s in enumerate(suffixes):
            suffix_ids[r, slen - len(s) :] = torch.tensor(s, device=device)
            suffix_mask[r, slen - len(s) :] = 1
        mask = torch.cat([mask, suffix_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        result = model(
            input_ids=suffix_ids,
            attention_mask=mask,
            position_ids=positions[:, plen:],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits, cache = result.logits, result.past_key_values
        last_pos = positions[:, -1]
        alive = torch.arange(len(suffixes), device=device)  # original row of each live batch row
        generated: list[list[int]] = [[] for _ in suffixes]
        chosen_logprobs: list[list[float]] = [[] for _ in suffixes]
        for step in range(max_new_tokens):
            next_tokens = logits[:, -1, :].argmax(dim=-1)
            finished = torch.isin(next_tokens, stop)
            if with_logprobs:  # the chosen token's log-softmax (float32: bf16 logits lose the small ones)
                step_lp = logits[:, -1, :].float().log_softmax(dim=-1).gather(1, next_tokens[:, None])[:, 0].tolist()
            for j, (row, token, done) in enumerate(zip(alive.tolist(), next_tokens.tolist(), finished.tolist())):
                if not done:
                    generated[row].append(token)
                    if with_logprobs:
                        chosen_logprobs[row].append(step_lp[j])
            keep = (~finished).nonzero(as_tuple=True)[0]
            if keep.numel() == 0 or step == max_new_tokens - 1:
                break
            if keep.numel() < alive.numel():  # drop finished rows from the batch and the cache
                alive, next_tokens, mask, last_pos = alive[keep], next_tokens[keep], mask[keep], last_pos[keep]
                cache.reorder_cache(keep)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last_pos = last_pos + 1
            logits = model(
                input_ids=next_tokens[:, None],
                attention_mask=mask,
                position_ids=last_pos[:, None],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits
    if with_logprobs:
        generated = [Generated(tuple(t), tuple(lp)) for t, lp in zip(generated, chosen_logprobs)]  # type: ignore[misc]
    out, r = [], 0
    for g in groups:
        out.append(generated[r : r + len(g.suffixes)])
        r += len(g.suffixes)
    return out


def greedy_naive(
    model, prompts: Sequence[Sequence[int]], *, stop_ids: Sequence[int], pad_id: int, max_new_tokens: int = 256
) -> list[list[int]]:
    """The baseline: ``model.generate`` greedily on one full prompt at a time."""
    import torch

    outs = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([list(prompt)], device=model.device)
            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=list(stop_ids),
                pad_token_id=pad_id,
            )
            tokens = gen[0, ids.shape[1] :].tolist()
            for i, t in enumerate(tokens):
                if t in stop_ids:
                    tokens = tokens[:i]
                    break
            outs.append(tokens)
    return outs

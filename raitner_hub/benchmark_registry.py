"""The benchmark registry: every benchmark's files, splits, license, label map and gold (paper.md §6.1).

Data only (and the two small types that hold it); :mod:`raitner_hub.benchmarks` reads, relabels and
publishes what is registered here. The split rules are described there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner_hub.errors import ConfigError

SEED = 42
MAX_TEST = 2_000
FAR_ABOVE = 3_000
LABEL_MAPS = Path(__file__).resolve().parent / "label_maps"
DROPPED_BY_DEFAULT = ("misc", "MISC")  # never queried (paper.md §6.1), also for benchmark files given by path


@dataclass(frozen=True)
class Split:
    """Where a split comes from: a file under the benchmark folder, whole or a seeded part of it."""

    file: str  # a file under the benchmark folder, or the split name of a Hub source
    part: str = "all"  # all | half_a (random.sample of n//2) | half_b (the rest) | holdout (MAX_TEST) | rest
    format: str = ""  # this file's format when it differs from the spec's (UniNER's test file)


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    lang: str
    folder: str  # under the data root
    splits: dict[str, Split]
    source: str
    license: str
    redistributable: bool = True
    license_note: str = ""
    notes: str = ""
    label_map: str = ""  # file stem in label_maps/ or a JSON path, defaults to name
    format: str = "auto"
    gold: str = "bio"  # where the test gold comes from: uniner (UniNER's test file) | bio | the source's format
    default: bool = True  # part of "every benchmark" (the _bio variants are asked for by name)
    hub: str = ""  # a Hub dataset ``org/name[@revision]`` in the token-classification layout, instead of files
    hub_config: str | None = None

    def label_map_path(self) -> Path:
        path = Path(self.label_map) if self.label_map else None
        return (
            path if path is not None and path.suffix == ".json" else LABEL_MAPS / f"{self.label_map or self.name}.json"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkSpec:
        """A spec from a mapping (YAML/JSON): ``splits`` maps split -> file (or Hub split) or ``{file, part}``.

        Example:
            >>> BenchmarkSpec.from_dict({"name": "cross_ner_ai", "lang": "en", "hub": "DFKI-SLT/cross_ner",
            ...     "hub_config": "ai", "label_map": "crossner_ai", "splits": {"test": "test", "train": "train"},
            ...     "source": "DFKI-SLT/cross_ner", "license": "mit"}).splits["test"]
            Split(file='test', part='all', format='')
        """
        from raitner_hub.config import from_dict

        data = dict(data)
        splits = data.pop("splits", None)
        if not isinstance(splits, Mapping) or not splits:
            raise ConfigError(f"benchmark spec {data.get('name')!r}: 'splits' must map split names to files")
        data["splits"] = {split: Split(**v) if isinstance(v, Mapping) else Split(str(v)) for split, v in splits.items()}
        data.setdefault("folder", "")
        data.setdefault("source", data.get("hub", ""))
        data.setdefault("license", "unknown")
        if data.get("hub"):
            data.setdefault("gold", "hub")
        return from_dict(cls, data, where=f"benchmark spec {data.get('name')!r}")


UNINER_SOURCE = "universal-ner/universal-ner@844e0e12262f2606d1d61ed5e9a89ce06ea6b5e3 src/eval/test_data"
UNINER_NOTE = (
    "Test gold = UniNER's own test file ({file}, {source}), as UniNER and RA-IT scored it; train and "
    "validation from the BIO files. BIO-derived test gold: the config {name}_bio."
)


def _crossner(domain: str, test: bool = True, gold: str = "uniner") -> BenchmarkSpec:
    splits = {"train": Split("train.bio.txt")}
    if test:
        test_split = Split("test.uniner.json", format="uniner") if gold == "uniner" else Split("test.bio.txt")
        splits |= {"validation": Split("dev.bio.txt"), "test": test_split}
    else:
        splits |= {"test": Split("dev.bio.txt")}
    name = f"crossner_{domain}"
    notes = (
        "The CrossNER science test split is not provided: the dev file is the test split."
        if not test
        else (
            UNINER_NOTE.format(
                file=f"CrossNER_{'AI' if domain == 'ai' else domain}.json", source=UNINER_SOURCE, name=name
            )
            if gold == "uniner"
            else "Test gold derived from the CrossNER BIO test file."
        )
    )
    return BenchmarkSpec(
        name if gold == "uniner" or not test else f"{name}_bio",
        "en",
        f"en/crossner_{domain}",
        splits,
        source="zliucr/CrossNER@2e7ba2a7798c961e3f29fbc51252c5a8d40224bf ner_data/" + domain,
        license="mit",
        notes=notes,
        label_map=name,
        gold=gold if test else "bio",
        default=gold == "uniner" or not test,
    )


def _mit_restaurant(gold: str) -> BenchmarkSpec:
    test = Split("test.uniner.json", format="uniner") if gold == "uniner" else Split("test.bio.txt")
    return BenchmarkSpec(
        "mit_restaurant" if gold == "uniner" else "mit_restaurant_bio",
        "en",
        "en/mit_restaurant",
        {"train": Split("train.bio.txt"), "test": test},
        source="andrewzamai/SLIMER@cd212dc445e1b5d0c0b4ea901393fa2d0e7b8b14 data/MIT/restaurant (MIT SLS corpus)",
        license="unknown",
        license_note=_NO_LICENSE,
        label_map="mit_restaurant",
        gold=gold,
        default=gold == "uniner",
        notes=UNINER_NOTE.format(file="mit-restaurant.json", source=UNINER_SOURCE, name="mit_restaurant").replace(
            " and validation", ""
        )
        if gold == "uniner"
        else "Test gold derived from the MIT Restaurant BIO test file.",
    )


_NO_LICENSE = "No license file in the source repository; check the original terms before publishing."
BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        _crossner("ai"),
        _crossner("literature"),
        _crossner("music"),
        _crossner("politics"),
        _crossner("science", test=False),
        *(_crossner(domain, gold="bio") for domain in ("ai", "literature", "music", "politics")),
        BenchmarkSpec(
            "mit_movie",
            "en",
            "en/mit_movie",
            {"test": Split("train.bio.txt", "holdout"), "train": Split("train.bio.txt", "rest")},
            source="andrewzamai/SLIMER@cd212dc445e1b5d0c0b4ea901393fa2d0e7b8b14 data/MIT/movie (MIT SLS 'eng' corpus)",
            license="unknown",
            license_note=_NO_LICENSE,
            notes="The MIT-Movie test split is not provided: test = 2,000 train sentences drawn with "
            "random.seed(42); random.sample, train = the remaining 7,775. Not comparable to the paper.",
        ),
        _mit_restaurant("uniner"),
        _mit_restaurant("bio"),
        BenchmarkSpec(
            "weibo",
            "zh",
            "zh/weibo",
            {"train": Split("train.conll"), "test": Split("dev.conll")},
            source="hltcoe/golden-horse@7a73c08e45ed94312af4ef2d97cc35a47d029e99 data/weiboNER_2nd_conll",
            license="unknown",
            license_note=_NO_LICENSE,
            notes="The Weibo test split is not provided: the dev file (270 messages) is the test split.",
        ),
        BenchmarkSpec(
            "msra",
            "zh",
            "zh/msra",
            {"test": Split("test.bio.txt")},
            source="OYE93/Chinese-NLP-Corpus@e9bb5b5f262466af5d45bcf7ee3380f2cb994907"
            " NER/MSRA/msra_test_bio.txt (SIGHAN 2006)",
            license="unknown",
            license_note=_NO_LICENSE,
            notes="Test cut from 3,442 to 2,000 sentences (seed 42). No train split here (no in-domain pool).",
        ),
        BenchmarkSpec(
            "boson",
            "zh",
            "zh/boson",
            {"train": Split("train.jsonl"), "validation": Split("dev.jsonl"), "test": Split("test.jsonl")},
            source="Emma1066/Retrieval-Augmented-IT-OpenNER@c9cb37efb5667fe33134d4e3aa0cc008443e900d"
            " data/benchmark_data/boson (RA-IT's split)",
            license="other",
            redistributable=False,
            license_note="BosonNLP license: free research use with attribution; it forbids giving the data "
            "to third parties and commercial use. Keep it private, never publish it.",
            notes="No offsets in the source: gold spans are every occurrence of each annotated mention.",
            format="boson",
        ),
        BenchmarkSpec(
            "cluener",
            "zh",
            "zh/cluener",
            {
                "train": Split("train.jsonl"),
                "test": Split("dev.jsonl", "half_a"),
                "validation": Split("dev.jsonl", "half_b"),
            },
            source="hemingkx/CLUENER2020@4bfd0b5fdd1537558f0c32dd28339af1f337afc9"
            " BERT-CRF/data/clue (official dev as dev.jsonl)",
            license="unknown",
            license_note=_NO_LICENSE,
            notes="No labelled public test: the official dev set is split in half (seed 42): test / validation.",
        ),
        BenchmarkSpec(
            "cmeee",
            "zh",
            "zh/cmeee_v2",
            {"test": Split("dev.json", "half_a"), "validation": Split("dev.json", "half_b")},
            source="honeyandme/knowledge@b9330e6ea0bbd206b5f57a7f36a03b2048b2fcd5 data/CMeEE-V2 (CBLUE CMeEE-V2 dev)",
            license="other",
            redistributable=False,
            license_note="CBLUE data is distributed by Tianchi under its own terms (not verified here); "
            "treated as not redistributable.",
            notes="No labelled public test: the dev set is split in half (seed 42): test / validation. V2 train is "
            "not here (no in-domain pool).",
        ),
        BenchmarkSpec(
            "yidu",
            "zh",
            "zh/yidu_s4k_sample",
            {"train": Split("train_10.jsonl"), "test": Split("dev_100.jsonl")},
            source="cfy201696/Craig-Ai@0059d12b6343f09cace6fb67ca6ea6d60fd1a807"
            " data/yidu-s4k (a 10 + 100 sample of Yidu-S4K, CCKS 2019)",
            license="other",
            redistributable=False,
            license_note="Yidu-S4K (CCKS 2019) terms not verified; treated as not redistributable.",
            notes="Only a sample: test = the 100-record dev sample, train = 10 records. Not comparable.",
        ),
    ]
}

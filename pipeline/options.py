"""firsthand's options: one PipelineOptions class (so templates and runners see them)
plus the checked, immutable RunConfig the pipeline is built from."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from detectors.minhash import CHAR, WORD, MinHashConfig, bands_rows_for_threshold
from pipeline.errors import ConfigError
from pipeline.fields import PRESETS, FieldMapping, mapping_from
from pipeline.formats import FORMATS
from pipeline.detect import DEFAULT_BATCH, POLICIES, DetectConfig
from pipeline.lsh import VERIFY_CHOICES, VERIFY_SHINGLES, DedupConfig

MODES = ("filter", "tag")
DEFAULT_SHARD_INPUT_MB = 64
DEFAULT_MAX_RECORD_BYTES = 64 << 20


def _both(name: str) -> list[str]:
    """`--text-field` and `--text_field`: dashes for people, underscores for Beam templates."""
    dashed = "--" + name.replace("_", "-")
    underscored = "--" + name
    return [dashed] if dashed == underscored else [dashed, underscored]


class FirsthandOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add(*_both("input"), dest="input", action="append",
            help="Input files: a path or glob on any Beam filesystem (local, gs://, s3://). Repeat for several.")
        add(*_both("output"), dest="output", help="Run folder to create; must be empty unless --overwrite.")
        add(*_both("mode"), dest="mode", default="filter", choices=MODES,
            help="filter: write kept/ and rejected/. tag: write every document to documents/ "
                 "with its decision, dropping nothing. (default: filter)")
        add(*_both("preset"), dest="preset", default="auto", choices=sorted(PRESETS),
            help="Field layout of JSON Lines/Parquet input. auto tries every preset's fields. (default: auto)")
        for field in ("text", "id", "url", "date"):
            add(*_both(f"{field}_field"), dest=f"{field}_field", default=None,
                help=f"Dotted path(s) of the {field} field, comma-separated, first present wins; "
                     "overrides the preset.")
        add(*_both("format"), dest="format", default="auto", choices=("auto",) + FORMATS,
            help="Input format for every file; auto tells it from each file name. (default: auto)")
        add(*_both("num_shards"), dest="num_shards", type=int, default=0,
            help="Output shards per table. 0: one per --shard-input-mb of input. (default: 0)")
        add(*_both("shard_input_mb"), dest="shard_input_mb", type=int, default=DEFAULT_SHARD_INPUT_MB,
            help=f"With --num-shards 0, input MiB per output shard. (default: {DEFAULT_SHARD_INPUT_MB})")
        add(*_both("max_record_bytes"), dest="max_record_bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES,
            help="Records larger than this go to errors/ as record_too_large, read in bounded memory. "
                 f"(default: {DEFAULT_MAX_RECORD_BYTES})")
        add(*_both("html_extraction"), dest="html_extraction", default="main", choices=("main", "full"),
            help="WARC HTML to text: main drops navigation and boilerplate, full keeps all text. (default: main)")
        add(*_both("overwrite"), dest="overwrite", action="store_true",
            help="Replace an earlier firsthand run in --output.")
        _add_dedup_args(add)
        _add_detector_args(add)


_DEFAULT_MINHASH = MinHashConfig()
_DEFAULT_DEDUP = DedupConfig()


def _add_dedup_args(add) -> None:
    add(*_both("dedup"), dest="dedup", default="near", choices=("near", "exact"),
        help="near: exact and near duplicates (MinHash LSH); exact: identical normalised text only. (default: near)")
    add(*_both("dedup_threshold"), dest="dedup_threshold", type=float, default=None,
        help="Jaccard similarity of shingle sets that makes a near duplicate: the verification bar, and, "
             "unless --lsh-bands/--lsh-rows are given, what bands x rows are derived from. "
             "(default: 0.8, with the measured 14 x 8 bands)")
    add(*_both("shingle_size"), dest="shingle_size", type=int, default=_DEFAULT_MINHASH.ngram,
        help=f"Words (or characters) per shingle. (default: {_DEFAULT_MINHASH.ngram})")
    add(*_both("shingle_unit"), dest="shingle_unit", default=WORD, choices=(WORD, CHAR),
        help="word n-grams, or char n-grams for languages written without spaces. (default: word)")
    add(*_both("fold_digits"), dest="fold_digits", action="store_true",
        help="Treat every digit as 0 when shingling (pages that differ only in numbers become copies).")
    add(*_both("minhash_perms"), dest="minhash_perms", type=int, default=_DEFAULT_MINHASH.num_perm,
        help=f"MinHash permutations per signature. (default: {_DEFAULT_MINHASH.num_perm})")
    add(*_both("lsh_bands"), dest="lsh_bands", type=int, default=None,
        help=f"LSH bands. (default: {_DEFAULT_MINHASH.bands}, or derived from --dedup-threshold)")
    add(*_both("lsh_rows"), dest="lsh_rows", type=int, default=None,
        help=f"Signature rows per band. (default: {_DEFAULT_MINHASH.rows}, or derived from --dedup-threshold)")
    add(*_both("dedup_verify"), dest="dedup_verify", default=VERIFY_SHINGLES, choices=VERIFY_CHOICES + ("off",),
        help="Check each LSH candidate pair before clustering and drop it below --dedup-threshold: "
             "shingles compares the hashed shingle sets (exact up to 1,024 distinct shingles, a bottom-k "
             "estimate beyond); signature compares the MinHash signatures (cheaper, noisier); off keeps every "
             "candidate. (default: shingles)")
    add(*_both("cc_rounds"), dest="cc_rounds", type=int, default=_DEFAULT_DEDUP.cc_rounds,
        help="Distributed connected-components rounds; what is unfinished after them is finished on one "
             f"worker, with a warning. (default: {_DEFAULT_DEDUP.cc_rounds})")
    add(*_both("dedup_partitions"), dest="dedup_partitions", type=int, default=0,
        help="Partitions of the batched dedup shuffles; 0: twice the output shards, at least 8. "
             "Results do not depend on it. (default: 0)")


def _add_detector_args(add) -> None:
    add(*_both("detectors"), dest="detectors", default="on", choices=("on", "off"),
        help="Score every document for machine-written text (calibrated probability, signals, chatbot "
             "residue). (default: on)")
    add(*_both("detector_model"), dest="detector_model", default=None,
        help="Detector stack folder written by `firsthand train-detector`, on any Beam filesystem. "
             "(default: the model shipped with firsthand)")
    add(*_both("synthetic_threshold"), dest="synthetic_threshold", type=float, default=None,
        help="With --synthetic-policy reject, documents whose synthetic_probability is at or above this "
             "are rejected with reason `synthetic`. (default: the detector model's, chosen so that at most 1%% "
             "of human web pages it never saw are rejected; the manifest records it)")
    add(*_both("synthetic_policy"), dest="synthetic_policy", default="reject", choices=POLICIES,
        help="reject: reject documents at or above --synthetic-threshold, or with chatbot residue. "
             "weight: reject none for it; write sample_weight = 1 - synthetic_probability (0 with chatbot "
             "residue). (default: reject)")
    add(*_both("date_prior_odds"), dest="date_prior_odds", type=float, default=None,
        help="Multiply the odds of being machine-written by this for documents dated before 30 Nov 2022 "
             "(ChatGPT's release); 1 switches the date prior off. (default: the model's, 0.05)")
    add(*_both("detector_batch"), dest="detector_batch", type=int, default=DEFAULT_BATCH,
        help=f"Documents per scoring batch. (default: {DEFAULT_BATCH})")


def detect_config_from(o: "FirsthandOptions") -> DetectConfig:
    if o.synthetic_threshold is not None and not 0.0 < o.synthetic_threshold < 1.0:
        raise ConfigError(f"--synthetic-threshold must be in (0, 1) (probabilities stop at 0.9999), "
                          f"got {o.synthetic_threshold}")
    if o.date_prior_odds is not None and not 0.0 < o.date_prior_odds <= 1.0:
        raise ConfigError(f"--date-prior-odds must be in (0, 1] (1 switches the prior off), got {o.date_prior_odds}")
    if o.detector_batch < 1:
        raise ConfigError(f"--detector-batch must be at least 1, got {o.detector_batch}")
    return DetectConfig(enabled=o.detectors == "on", model=o.detector_model, threshold=o.synthetic_threshold,
                        policy=o.synthetic_policy, date_prior_odds=o.date_prior_odds, batch=o.detector_batch)


def dedup_config_from(o: "FirsthandOptions") -> DedupConfig:
    """The checked DedupConfig; partitions 0 means automatic (set by the run)."""
    threshold = o.dedup_threshold
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"--dedup-threshold must be between 0 and 1 (exclusive), got {threshold}")
    for name, value, least in (("--shingle-size", o.shingle_size, 1), ("--minhash-perms", o.minhash_perms, 1),
                               ("--cc-rounds", o.cc_rounds, 0), ("--dedup-partitions", o.dedup_partitions, 0)):
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    bands, rows = o.lsh_bands, o.lsh_rows
    if bands is None and rows is None:
        if threshold is not None:
            bands, rows = bands_rows_for_threshold(threshold, o.minhash_perms)
        else:
            bands, rows = _DEFAULT_MINHASH.bands, _DEFAULT_MINHASH.rows
    elif bands is None or rows is None:
        raise ConfigError("give both --lsh-bands and --lsh-rows, or neither")
    if bands < 1 or rows < 1 or bands * rows > o.minhash_perms:
        raise ConfigError(f"{bands} LSH bands x {rows} rows use {bands * rows} MinHash permutations but only "
                          f"{o.minhash_perms} are computed: raise --minhash-perms to at least {bands * rows}, "
                          "or lower --lsh-bands/--lsh-rows")
    try:
        minhash = MinHashConfig(ngram=o.shingle_size, unit=o.shingle_unit, fold_digits=o.fold_digits,
                                num_perm=o.minhash_perms, bands=bands, rows=rows)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return DedupConfig(near=o.dedup == "near", minhash=minhash,
                       verify=None if o.dedup_verify == "off" else o.dedup_verify,
                       threshold=threshold if threshold is not None else _DEFAULT_DEDUP.threshold,
                       cc_rounds=o.cc_rounds, partitions=o.dedup_partitions)


@dataclass(frozen=True)
class RunConfig:
    inputs: tuple[str, ...]
    output: str
    mode: str
    mapping: FieldMapping
    preset: str
    format: str
    num_shards: int
    shard_input_mb: int
    max_record_bytes: int
    html_main_content: bool
    overwrite: bool
    dedup: DedupConfig
    detect: DetectConfig

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        d["mapping"] = self.mapping.to_dict()
        return d


def config_from_options(options: PipelineOptions) -> RunConfig:
    """Check the options and return the RunConfig, or raise ConfigError saying what to change."""
    o = options.view_as(FirsthandOptions)
    if not o.input:
        raise ConfigError("no input: pass --input GLOB (repeat it for several)")
    if not o.output:
        raise ConfigError("no output: pass --output DIR, a folder for this run")
    if o.num_shards < 0:
        raise ConfigError(f"--num-shards must be 0 (automatic) or more, got {o.num_shards}")
    if o.shard_input_mb <= 0:
        raise ConfigError(f"--shard-input-mb must be positive, got {o.shard_input_mb}")
    if o.max_record_bytes <= 0:
        raise ConfigError(f"--max-record-bytes must be positive, got {o.max_record_bytes}")
    try:
        mapping = mapping_from(o.preset, o.text_field, o.id_field, o.url_field, o.date_field)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return RunConfig(
        inputs=tuple(o.input), output=o.output.rstrip("/"), mode=o.mode, mapping=mapping,
        preset=o.preset, format=o.format, num_shards=o.num_shards, shard_input_mb=o.shard_input_mb,
        max_record_bytes=o.max_record_bytes, html_main_content=o.html_extraction == "main",
        overwrite=o.overwrite, dedup=dedup_config_from(o), detect=detect_config_from(o),
    )


def option_actions() -> dict[str, argparse.Action]:
    """firsthand's pipeline options by name, as argparse defines them (for config files and
    the Dataflow template, which must agree with the command line)."""
    parser = argparse.ArgumentParser(add_help=False)
    FirsthandOptions._add_argparse_args(parser)
    return {a.dest: a for a in parser._actions}


def switch_names() -> set[str]:
    """Options that take no value (`--overwrite`)."""
    return {d for d, a in option_actions().items() if isinstance(a, argparse._StoreTrueAction)}


def config_file_args(path: str, skip: set[str] = frozenset()) -> list[str]:
    """Command-line arguments equivalent to a YAML or JSON config file of firsthand options.

    Keys are option names (`text_field` or `text-field`). Arguments given on the command
    line replace these: options named in `skip` are left out. Only safe YAML loading is used.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) if not path.endswith(".json") else json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except (yaml.YAMLError, ValueError) as e:
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {e}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    actions = option_actions()
    args: list[str] = []
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest not in actions:
            raise ConfigError(f"config file {path}: unknown option {key!r}; known: {', '.join(sorted(actions))}")
        flag = "--" + dest.replace("_", "-")
        if dest in skip:
            continue
        if isinstance(actions[dest], argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise ConfigError(f"config file {path}: {key} must be true or false, got {value!r}")
            if value:
                args.append(flag)
        elif isinstance(value, list):
            if not isinstance(actions[dest], argparse._AppendAction):
                raise ConfigError(f"config file {path}: {key} takes one value, got a list")
            for item in value:
                args.append(f"{flag}={item}")
        elif isinstance(value, (dict, bool)) or value is None:
            raise ConfigError(f"config file {path}: {key} must be a string or number, got {value!r}")
        else:
            args.append(f"{flag}={value}")
    return args

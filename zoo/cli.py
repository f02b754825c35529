"""``zoo`` shell command: ``zoo list | download NAME | fit | predict`` (``zoo --help``).

Bad input (an unknown model or dataset, malformed ``--params``, a missing or
corrupt checkpoint, unusable data, wrong arguments) ends with exit code 1 and a
one-line ``zoo: error: ...`` message on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

from omicsdata.errors import OmicsDataError


def _list(args) -> int:
    import zoo
    from zoo.catalog import model_entries

    print("architectures: " + ", ".join(zoo.list_models()))
    print("pretrained models:")
    for name, (e, _) in sorted(model_entries().items()):
        src = e["source"]
        where = src.get("repo_id") or src.get("url") or src["kind"]
        rev = f"@{src['revision']}" if src.get("revision") else ""
        conv = f"  (converted locally by '{e['convert']['name']}')" if e.get("convert") else ""
        print(f"  {name:<20} {e['architecture']:<8} {where}{rev}  licence {e['license']}{conv}"
              + ("  not redistributable" if e.get("redistributable") is False else ""))
    return 0


def _download(args) -> int:
    from zoo.pretrained import download

    print(download(args.name, revision=args.revision, force=args.force))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 1."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(1)


def _params(text: str | None) -> dict:
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as e:
        raise OmicsDataError(f"--params: not valid JSON ({e.msg} at character {e.pos}): {text[:80]!r}") from None
    if not isinstance(params, dict):
        raise OmicsDataError(f"--params: expected a JSON object of hyper-parameters, got {type(params).__name__}")
    return params


def _fit(args) -> int:
    import zoo

    params = _params(args.params)
    try:
        model = zoo.create_model(args.model, **params)
    except TypeError as e:
        raise OmicsDataError(f"--params for model '{args.model}': {e}") from None
    model.fit(args.data, split=args.split)
    res = model.evaluate(args.data, split=args.eval_split) if args.eval_split else {}
    model.save_pretrained(args.out)
    print(json.dumps({"checkpoint": args.out, "epochs": model.n_epochs_, **res}, default=float))
    return 0


def _predict(args) -> int:
    import pandas as pd

    import zoo

    model = zoo.Estimator.from_pretrained(args.model, revision=args.revision)
    out = model.predict_outputs(args.data, split=args.split)
    df = pd.DataFrame({"sample": out["obs_names"]})
    if "risk" in out:
        df["risk"] = out["risk"]
    if "proba" in out:
        classes = model.classes_
        df["predicted_class"] = classes[out["proba"].argmax(1)]
        for i, c in enumerate(classes):
            df[f"proba_{c}"] = out["proba"][:, i]
    if args.out:
        df.to_csv(args.out, index=False)
        print(f"{len(df)} predictions written to {args.out}")
    else:
        df.to_csv(sys.stdout, index=False)
    return 0


def main(argv=None) -> int:
    ap = _Parser(prog="zoo", description="Pretrained and trainable multi-omics models.")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="architectures and pretrained catalog models")
    p.set_defaults(fn=_list)
    p = sub.add_parser("download", help="fetch (and verify/convert) a catalog model into the local cache")
    p.add_argument("name")
    p.add_argument("--revision", default=None)
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(fn=_download)
    p = sub.add_parser("fit", help="fit a model on a dataset and save a checkpoint")
    p.add_argument("data", help="catalog dataset name or store path")
    p.add_argument("--model", default="senmo", help="architecture (zoo list)")
    p.add_argument("--params", default=None, help='JSON hyper-parameters, e.g. \'{"max_epochs": 20}\'')
    p.add_argument("--split", default="train")
    p.add_argument("--eval-split", default="test", help="split to report metrics on ('' for none)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.set_defaults(fn=_fit)
    p = sub.add_parser("predict", help="predict with a checkpoint folder, Hub repo id or catalog model")
    p.add_argument("model")
    p.add_argument("data", help="catalog dataset name or store path")
    p.add_argument("--split", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--out", default=None, help="CSV file (default: stdout)")
    p.set_defaults(fn=_predict)
    args = ap.parse_args(argv)
    from omicsdata.progress import cli_stage_lines

    try:
        with cli_stage_lines():  # progress: a bar in a terminal, one line per stage otherwise
            return args.fn(args)
    except OmicsDataError as e:
        print(f"zoo: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError) as e:  # bad input reaching a library call
        print(f"zoo: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())

"""``zoo`` shell command: ``zoo list | download NAME | fit | predict`` (``zoo --help``)."""
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


def _fit(args) -> int:
    import zoo

    params = json.loads(args.params) if args.params else {}
    model = zoo.create_model(args.model, **params)
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
    ap = argparse.ArgumentParser(prog="zoo", description="Pretrained and trainable multi-omics models.")
    sub = ap.add_subparsers(dest="cmd", required=True)
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
    try:
        return args.fn(args)
    except OmicsDataError as e:
        print(f"zoo: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

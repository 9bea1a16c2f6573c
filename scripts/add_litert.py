#!/usr/bin/env python3
"""Add the LiteRT conversion to a model file written without one (trained on Keras's JAX backend, say):

    python scripts/add_litert.py IN.vsep OUT.vsep

Needs TensorFlow (the ``train`` extra); Keras runs on TensorFlow here whatever ``KERAS_BACKEND`` says.  OUT
gets IN's settings, weights and info, and the network converted as training on TensorFlow converts it
(:func:`vocalsep.export.to_tflite`), so that ``vocalsep separate`` runs it in LiteRT.  OUT must not exist
(it is never replaced, not even when it appears during the conversion); IN is left as it is.  Errors are
one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is imported: only TensorFlow converts

    from vocalsep.errors import VocalsepError
    from vocalsep.extras import import_tensorflow, require

    try:
        if args.out.exists():
            raise VocalsepError(f"{args.out}: exists; give a new file")
        require("train", "scripts/add_litert.py", ("tensorflow", "keras"))
        import_tensorflow()
        from vocalsep.export import to_tflite
        from vocalsep.model import ModelFile

        mf = ModelFile.load(args.model)
        if mf.tflite is not None:
            print(f"{args.model}: has a LiteRT conversion already; written as it is")
        else:
            mf.tflite = to_tflite(mf.keras_model(), mf.model)
        mf.save_new(args.out)  # never over OUT, also if it appeared meanwhile
    except VocalsepError as e:
        raise SystemExit(f"error: {e}")
    print(f"{args.out}: written")


if __name__ == "__main__":
    main()

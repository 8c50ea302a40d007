"""RA-IT open NER Space: a model (or LoRA adapter) plus demonstrations retrieved on demand.

Settings come from the environment, then from ``raitner_space.json`` (written by ``raitner push-space``):

- ``RAITNER_MODEL``: model or adapter repo id, or a local folder (required);
- ``RAITNER_INDEX``: retrieval index repo id or folder, or an annotated jsonl (optional);
- ``RAITNER_LANG``: ``en``, ``zh`` or ``auto`` (default).

Runs unchanged on the Hub and locally: ``RAITNER_MODEL=me/ra-it-lora python spaces/raitner-ner/app.py``.
On the Hub the package is bundled next to this file (``raitner_hub/``), so the Space runs the exact code
version it was pushed from; in a checkout the installed package is used.
"""

import json
import os
import sys
from pathlib import Path

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA (torch is imported below)
    import spaces  # noqa: F401
except ImportError:  # not on a Space: the Hub preinstalls `spaces`, a checkout may not have it
    spaces = None

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bundled raitner_hub/ wins over any installed copy

import raitner_hub  # noqa: E402
from raitner_hub.serve import serve  # noqa: E402

config_file = HERE / "raitner_space.json"
defaults = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
model = os.environ.get("RAITNER_MODEL") or defaults.get("model")
index = os.environ.get("RAITNER_INDEX") or defaults.get("index")
lang = os.environ.get("RAITNER_LANG") or defaults.get("lang") or "auto"
# On ZeroGPU the model is placed on `cuda` when the app starts (as the Spaces docs show); only the
# generation runs under @spaces.GPU (raitner_hub.serve.gpu). Elsewhere: the best device available.
device = os.environ.get("RAITNER_DEVICE") or ("cuda" if os.environ.get("SPACES_ZERO_GPU") else None)

if __name__ == "__main__":
    if not model:
        sys.exit(
            "No model configured: set RAITNER_MODEL to an adapter/model repo id or folder "
            "(or push with `raitner push-space --model ...`)."
        )
    print(f"raitner-hub {raitner_hub.__version__} from {Path(raitner_hub.__file__).parent}", flush=True)
    # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set by the Hub, or by you) override these.
    serve(model, index, lang=lang, device=device, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))

"""st-drama's sentence-transformers modules, as named in a saved model's ``modules.json``.

This file is both the installed top-level module ``st_drama_modules`` and the copy shipped inside every saved model
folder. It prefers the installed st_drama package; without it, it uses the module files shipped beside it, so
``SentenceTransformer(folder, trust_remote_code=True)`` works with only sentence-transformers and transformers.
"""

try:
    from st_drama.models.llama_backbone import LlamaBackbone
    from st_drama.models.token_pooling import TokenPooling
except ImportError:
    import sys

    from .llama_backbone import LlamaBackbone
    from .token_pooling import TokenPooling

    # Our classes report this module's public name; register it so pickling finds them in this process.
    sys.modules.setdefault("st_drama_modules", sys.modules[__name__])

__all__ = ["LlamaBackbone", "TokenPooling"]

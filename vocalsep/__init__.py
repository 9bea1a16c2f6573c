"""vocalsep: singing-voice separation with the spectrogram U-Nets of Jansson et al. (ISMIR 2017) and their family.

    from vocalsep import Separator
    sep = Separator()                      # the two models shipped with the package, as an ensemble
    vocals, accompaniment = sep.separate(audio, sample_rate)   # audio: (samples, channels) float32
    sep.separate_file("song.mp3", "separated/song")

Heavy modules (TensorFlow and Keras, LiteRT, PyAV) are imported only when they are needed.
"""

from .errors import VocalsepError

__version__ = "0.3.0"
__all__ = ["Separator", "VocalsepError", "__version__"]


def __getattr__(name: str):
    if name == "Separator":
        from .separate import Separator

        return Separator
    raise AttributeError(f"module 'vocalsep' has no attribute {name!r}")

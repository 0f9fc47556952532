"""Class lists. The class list belongs to a dataset (FER+ adds `contempt`), so code takes it from the
dataset's ``dataset.json``; this module only names the FER2013 list in its canonical label order."""

FER2013_CLASSES: tuple[str, ...] = (
    "angry",  # 0
    "disgust",  # 1
    "fear",  # 2
    "happy",  # 3
    "sad",  # 4
    "surprise",  # 5
    "neutral",  # 6
)

# Share of each class in FER2013's Training usage (28,709 faces), used to make the synthetic set
# just as imbalanced.
FER2013_TRAIN_SHARE: dict[str, float] = {
    "angry": 3995 / 28709,
    "disgust": 436 / 28709,
    "fear": 4097 / 28709,
    "happy": 7215 / 28709,
    "sad": 4830 / 28709,
    "surprise": 3171 / 28709,
    "neutral": 4965 / 28709,
}

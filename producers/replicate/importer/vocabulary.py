"""The words the mapping step looks for: field names and description patterns per attribute.

Only general words (``prompt``, ``num_outputs``, "number of images"...), never a model's
name: the importer has no table of known models.
"""

from __future__ import annotations

import re

RATIO = re.compile(r"^\d+(?:\.\d+)?:\d+(?:\.\d+)?$")

NEGATIVE_WORDS = re.compile(
    r"negative|\bavoid|exclude|discourage|not (to )?(see|include|appear)|what not"
)
PROMPT_TEXT = re.compile(
    r"\bprompt\b|text to (speak|synthesi[sz]e|convert|read|say)|\binput text\b|\btext input\b"
    r"|text description|\bdescri\w* (of )?(the )?(image|video|music|audio|song|scene|sound)"
)
IMAGE_TEXT = re.compile(
    r"\b(input|init\w*|start\w*|first|source|conditioning|reference) (image|frame|picture)"
    r"|img2img|image[- ]to[- ](image|video)|\bimage (to|for) (start|animate|edit|transform)"
)
NEGATIVE_TEXT = re.compile(
    r"negative prompt|what to (avoid|exclude|discourage)|things to not see|to exclude from"
    r"|what not to"
)
IMAGE_REJECT = re.compile(r"\bmask|\blast\b|\bend(ing)? (image|frame)|\baudio|\bvideo file")
COUNT_TEXT = re.compile(r"number of (images|outputs|videos|samples|pictures|results|generations)\b")
COUNT_REJECT = re.compile(r"frame|step|inference|token")
DURATION_REJECT = re.compile(r"\bframes?\b|\bsteps?\b|\btokens?\b|\bcharacters?\b")
DURATION_NAME = re.compile(r"duration|length|seconds")
DURATION_TEXT = re.compile(
    r"\b(duration|length)\b.*\b(seconds?|milliseconds?|ms)\b|\bin (milli)?seconds\b"
)
VOICE_TEXT = re.compile(r"\bvoice (id|name|preset|to use)\b|\bspeaker (id|name)\b")

PROMPT_NAMES = ("prompt", "text", "input_text", "text_prompt", "text_input", "caption", "input")
SPEECH_PROMPT_NAMES = ("text", "prompt", "input_text", "text_input", "tts_text", "script")
NEGATIVE_NAMES = ("negative_prompt", "negative", "neg_prompt", "negative_text")
IMAGE_NAMES = (
    "image",
    "image_input",
    "input_image",
    "input_images",
    "images",
    "first_frame",
    "first_frame_image",
    "start_image",
    "start_frame",
    "image_url",
)
ASPECT_NAMES = ("aspect_ratio", "aspect", "ratio", "image_aspect_ratio", "video_aspect_ratio")
SIZE_PAIRS = (
    ("width", "height"),
    ("image_width", "image_height"),
    ("output_width", "output_height"),
    ("video_width", "video_height"),
    ("w", "h"),
)
COUNT_NAMES = (
    "num_outputs",
    "num_images",
    "number_of_images",
    "max_images",
    "batch_size",
    "num_samples",
    "n",
    "count",
    "image_count",
    "num_videos",
    "number_of_outputs",
    "n_images",
)
SEED_NAMES = ("seed", "random_seed", "noise_seed", "manual_seed")
DURATION_NAMES = (
    "duration_seconds",
    "duration",
    "seconds",
    "length_seconds",
    "duration_sec",
    "audio_length_in_s",
    "duration_ms",
    "length_ms",
    "music_length_ms",
    "music_length",
    "audio_length",
    "audio_duration",
    "video_duration",
    "total_duration",
    "length",
)
VOICE_NAMES = ("voice", "voice_id", "speaker", "speaker_id", "voice_name", "voice_preset")
LANGUAGE_NAMES = ("language", "language_code", "lang", "language_id", "lang_code", "locale")

#: ISO 639 codes and English names, to map a language code to an enum of language names.
LANGUAGES: dict[str, str] = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fil": "Filipino",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ms": "Malay",
    "nl": "Dutch",
    "nn": "Nynorsk",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sv": "Swedish",
    "ta": "Tamil",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "yue": "Cantonese",
    "zh": "Chinese",
}

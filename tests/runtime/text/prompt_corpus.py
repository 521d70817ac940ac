"""Prompts for the tokenizer tests: the kinds of text people type into Stable Diffusion, and edge cases."""

from __future__ import annotations

import random

HANDWRITTEN = [
    "",
    " ",
    "   \t\n  ",
    "\u3000\u00a0\u2003",
    "a photo of an astronaut riding a horse on mars",
    "A Photo Of An ASTRONAUT Riding A Horse On Mars",
    "a cat",
    "cat",
    "CAT!!!",
    "masterpiece, best quality, (ultra-detailed:1.2), [blurry], ((sharp focus)), {cinematic}",
    "(word:1.2) [word] ((word)) [[word]] (word) {word} <lora:myLora:0.8>",
    "portrait of a woman, by greg rutkowski and alphonse mucha, trending on artstation, 8k, uhd",
    "don't stop, it's fine, we're here, they've gone, I'm ok, you'll see, he'd go",
    "DON'T STOP IT'S FINE WE'RE",
    "'s 't 're 've 'm 'll 'd ' '' ''' 'sup 'tis",
    "rock 'n' roll",
    "l'été à Paris, café crème, naïve façade, Ångström, smörgåsbord, jalapeño",
    "Straße, Übermensch, ÄÖÜ äöü ß ẞ",
    "İstanbul, ıı, İİ, DİYARBAKIR",
    "ΟΔΟΣ ΟΔΟΣ. Σίσυφος ΣΊΣΥΦΟΣ",
    "Москва, Санкт-Петербург, ПРИВЕТ мир",
    "東京タワーの夜景、美しい",
    "一只可爱的猫在月球上",
    "한국어 프롬프트 테스트",
    "ภาษาไทย ทดสอบ",
    "हिन्दी में लिखा हुआ",
    "العربية نص تجريبي",
    "עברית טקסט",
    "emoji 🐱🚀🌕 party 🎉🎉 👩‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽",
    "🫨 shaking face, 🩷 pink heart",
    "numbers 0123456789 3.14159 1,000,000 1e-5 -42 +7 50% $100 €20 ¥300 £5",
    "½ ¾ ² ³ ① ② Ⅻ ٣ ४ ๕ 𝟘𝟙",
    "size 1024x768, 16:9, f/1.8, 85mm, ISO 100",
    "punctuation !@#$%^&*()_+-=[]{}|;':\",./<>?`~",
    "...!!!???,,,;;;:::---___",
    "em—dash en–dash “quotes” ‘single’ «guillemets» „low“ … · • †",
    "tabs\tand\nnewlines\r\nand  double  spaces",
    "zero\u200bwidth\u200cjoiners\u200dhere\ufeffbom",
    "combining e\u0301 vs é, A\u030a vs Å, n\u0303",
    "ﬁ ﬂ ligatures, ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "control \x1c\x1d\x1e\x1f chars and \x00 \x07 bell",
    "<|startoftext|>a prompt with special tokens<|endoftext|>",
    "hello <|endoftext|> world <|startoftext|> again",
    "hello<|ENDOFTEXT|>world <|StartOfText|>",
    "<|endoftext|><|endoftext|><|endoftext|>",
    "<|endoftext",
    "a_b_c snake_case CamelCase kebab-case dot.case",
    "https://example.com/path?query=1&x=2 user@example.com #hashtag @mention",
    "C:\\Users\\name\\file.png /usr/bin/python3",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a " * 100,
    "highly detailed, " * 20,
    "🐱" * 50,
    "東京" * 60,
]

_WORDS = (
    "a an the of on in with by and photo painting portrait landscape city night day sunset forest river "
    "mountain castle dragon cat dog horse astronaut robot woman man child old young beautiful dark bright "
    "detailed intricate cinematic lighting volumetric fog octane render unreal engine 4k 8k hdr bokeh "
    "watercolor oil canvas sketch anime studio ghibli pixar cyberpunk steampunk fantasy sci-fi surreal "
    "trending artstation masterpiece best quality ultra realistic sharp focus wide angle close-up"
).split()
_DECOR = ["({}:1.3)", "[{}]", "(({}))", "{}!", "{},", "{}.", "'{}'", '"{}"', "{}'s", "#{}", "{}...", "<{}>"]
_EXTRA = [
    "café",
    "naïve",
    "東京",
    "🐱",
    "ΣΟΦΙΑ",
    "Ёлка",
    "ﬁne",
    "e\u0301",
    "2024",
    "3.5",
    "x2",
    "½",
    "İ",
    "—",
    "\t",
]


def generated_prompts(count: int, seed: int = 0) -> list[str]:
    """Random prompts from SD-style words, emphasis syntax, unicode and numbers; some over 77 tokens."""
    rng = random.Random(seed)
    prompts = []
    for i in range(count):
        length = rng.choice([3, 6, 10, 20, 40, 90])
        parts = []
        for _ in range(length):
            word = rng.choice(_WORDS) if rng.random() > 0.15 else rng.choice(_EXTRA)
            if rng.random() < 0.2:
                word = rng.choice(_DECOR).format(word)
            if rng.random() < 0.1:
                word = word.upper()
            elif rng.random() < 0.1:
                word = word.capitalize()
            parts.append(word)
        sep = rng.choice([" ", ", ", " ", "  ", " | "])
        prompts.append(sep.join(parts) if i % 7 else "".join(parts))
    return prompts


def corpus() -> list[str]:
    return HANDWRITTEN + generated_prompts(250)

"""What the person reads during an enrolment: a neutral passage and prompted emotion sentences.

The passage is plain, factual text with no emotional content, about 20 seconds at a calm reading
pace (55-65 words), so that it shows the voice at rest. The prompted sentences (optional, one
per emotion) are short and carry their emotion in the wording, to make acting it easy. English,
German and Spanish; :func:`passage` falls back to English for other languages.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LANGUAGES", "PROMPTED_EMOTIONS", "Passage", "passage"]


@dataclass(frozen=True)
class Passage:
    """A neutral ``text`` and, per emotion label, one sentence to say in that emotion."""

    language: str
    key: str
    text: str
    prompts: dict[str, str]


#: Emotions prompted after the passage, in this order (labels of the shipped models).
PROMPTED_EMOTIONS = ("happy", "sad", "angry", "fearful", "surprised")

_PASSAGES = {
    "en": Passage(
        "en", "en-1",
        "The library opens at nine in the morning and closes at six in the evening. On the "
        "ground floor there are newspapers, a small café and a row of computers. Books for "
        "children are kept on the first floor, next to the reading room. To borrow a book, "
        "bring it to the desk by the entrance with your card. Most books may be kept for "
        "three weeks.",
        {
            "happy": "We won the tickets, and the whole family is coming with us!",
            "sad": "The old dog died last night, and the house feels empty now.",
            "angry": "You promised to call, and you did not even bother to answer!",
            "fearful": "Someone is walking behind me, and the street is completely dark.",
            "surprised": "You painted the entire kitchen yourself, in one afternoon?",
        },
    ),
    "de": Passage(
        "de", "de-1",
        "Die Bibliothek öffnet morgens um neun Uhr und schließt abends um sechs. Im Erdgeschoss "
        "gibt es Zeitungen, ein kleines Café und eine Reihe von Computern. Bücher für Kinder "
        "stehen im ersten Stock, neben dem Lesesaal. Wer ein Buch ausleihen möchte, bringt es "
        "mit dem Ausweis zur Theke am Eingang. Die meisten Bücher darf man drei Wochen "
        "behalten.",
        {
            "happy": "Wir haben die Karten gewonnen, und die ganze Familie kommt mit!",
            "sad": "Der alte Hund ist letzte Nacht gestorben, und das Haus ist jetzt so leer.",
            "angry": "Du hast versprochen anzurufen, und du gehst nicht einmal ans Telefon!",
            "fearful": "Jemand läuft hinter mir her, und die Straße ist völlig dunkel.",
            "surprised": "Du hast die ganze Küche allein gestrichen, an einem Nachmittag?",
        },
    ),
    "es": Passage(
        "es", "es-1",
        "La biblioteca abre a las nueve de la mañana y cierra a las seis de la tarde. En la "
        "planta baja hay periódicos, una pequeña cafetería y una fila de ordenadores. Los "
        "libros para niños están en el primer piso, junto a la sala de lectura. Para llevarse "
        "un libro, hay que presentarlo en el mostrador de la entrada con el carné. La mayoría "
        "de los libros se pueden tener tres semanas.",
        {
            "happy": "¡Hemos ganado las entradas y viene toda la familia con nosotros!",
            "sad": "El perro viejo murió anoche, y ahora la casa parece vacía.",
            "angry": "¡Prometiste llamar, y ni siquiera te molestas en contestar!",
            "fearful": "Alguien camina detrás de mí, y la calle está completamente oscura.",
            "surprised": "¿Pintaste toda la cocina tú solo, en una tarde?",
        },
    ),
}

LANGUAGES = tuple(_PASSAGES)


def passage(language: str = "en") -> Passage:
    """The passage for ``language`` (an ISO code such as ``de`` or ``de_DE``; English if
    unknown)."""
    return _PASSAGES.get(language.split("_")[0].split("-")[0].lower(), _PASSAGES["en"])

"""Seeded song composer: random songs as one General MIDI part list per stem.

A song has a tempo, a key (major or minor), a chord progression, sections (intro, verse, chorus,
bridge, outro) and four stems named as in MUSDB18: ``vocals`` (a lead melody on a voice-like
program: choir, voice oohs, synth voice, lead synths; silent in the intro and outro), ``drums``
(one of the soundfont's drum kits playing a kick/snare/hi-hat groove with fills), ``bass`` (a bass
line on the chord roots and fifths) and ``other`` (chords comped or arpeggiated by one or two
accompaniment instruments). Everything is drawn from ``Generator([seed, index])``, so song
``index`` of seed ``seed`` is always the same song.

The parts are :class:`pretty_midi.PrettyMIDI` objects (one per stem, writable as ``.mid``), and
:func:`edgesep.data.synth.music_render.render_song` turns them into audio.

References: Raffel & Ellis, "Intuitive analysis, creation and manipulation of MIDI data with
pretty_midi", ISMIR 2014 LBD; the General MIDI 1 program and percussion maps (MMA, 1991).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

STEMS: tuple[str, ...] = ("vocals", "drums", "bass", "other")

# General MIDI programs (0-based) per stem, from families that play the role
VOCAL_PROGRAMS = (52, 53, 54, 85, 80, 81)  # choir aahs, voice oohs, synth voice, lead voice/sq/saw
BASS_PROGRAMS = (32, 33, 34, 35, 36, 38, 39)  # acoustic, finger, pick, fretless, slap, synth 1-2
CHORD_PROGRAMS = (0, 1, 4, 5, 16, 17, 19, 24, 25, 26, 27, 48, 49, 50, 88, 89, 90, 91)
ARP_PROGRAMS = (0, 2, 6, 11, 12, 24, 25, 45, 46, 80, 81, 98)  # pianos, mallets, plucks, leads
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)  # bank 128 presets in TimGM6mb.sf2

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# progressions as scale degrees (0 = tonic), one chord per bar
PROGRESSIONS = (
    (0, 4, 5, 3),
    (0, 5, 3, 4),
    (0, 3, 4, 4),
    (5, 3, 0, 4),
    (0, 3, 5, 4),
    (0, 0, 3, 4),
    (0, 4, 3, 4),
    (0, 6, 5, 4),
)
SECTIONS = {  # name -> (bars, has vocals, drum intensity 0..2)
    "intro": (4, False, 0),
    "verse": (8, True, 1),
    "chorus": (8, True, 2),
    "bridge": (4, True, 1),
    "outro": (4, False, 0),
}
FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "outro"),
    ("intro", "verse", "chorus", "bridge", "chorus", "outro"),
    ("verse", "chorus", "verse", "chorus", "chorus"),
    ("intro", "chorus", "verse", "chorus", "bridge", "outro"),
)
KICK, SNARE, HAT_CLOSED, HAT_OPEN, CRASH, RIDE, TOM_LOW, TOM_HIGH = 36, 38, 42, 46, 49, 51, 45, 50
# 16-step grooves: (kick steps, snare steps)
GROOVES = (
    ((0, 8), (4, 12)),
    ((0, 6, 8), (4, 12)),
    ((0, 3, 8, 10), (4, 12)),
    ((0, 8, 11), (4, 12, 15)),
    ((0, 4, 8, 12), (4, 12)),  # four on the floor
    ((0, 10), (8,)),  # half time
)


@dataclass(frozen=True)
class Song:
    """One composed song: its parts per stem and what was drawn to make them."""

    name: str
    seed: tuple[int, int]  # (seed, index) it was composed from
    tempo: float
    key: int  # pitch class of the tonic
    minor: bool
    form: tuple[str, ...]
    programs: dict[str, tuple[int, ...]]  # per stem; drums: the kit's bank-128 preset
    parts: dict[str, pretty_midi.PrettyMIDI]
    seconds: float  # the song's length (whole bars, plus a short release tail)


def _add(inst: pretty_midi.Instrument, pitch: int, start: float, end: float, vel: int) -> None:
    vel = int(np.clip(vel, 1, 127))
    inst.notes.append(pretty_midi.Note(velocity=vel, pitch=int(pitch), start=start, end=end))


def _chord(scale: tuple[int, ...], key: int, degree: int, octave: int) -> list[int]:
    """Triad on scale ``degree`` (diatonic thirds) as MIDI pitches from ``octave``."""
    base = 12 * (octave + 1) + key
    out = []
    for step in (0, 2, 4):
        d = degree + step
        out.append(base + scale[d % 7] + 12 * (d // 7))
    return out


class _Composer:
    def __init__(self, rng: np.random.Generator, tempo: float, key: int, minor: bool) -> None:
        self.rng = rng
        self.beat = 60.0 / tempo
        self.bar = 4 * self.beat
        self.key = key
        self.scale = MINOR if minor else MAJOR

    def jitter(self) -> float:
        return float(self.rng.normal(0.0, 0.004))  # a few ms of human timing

    def drums(self, inst: pretty_midi.Instrument, t0: float, intensity: int, last: bool) -> None:
        kicks, snares = GROOVES[int(self.rng.integers(len(GROOVES)))]
        step = self.bar / 16
        hat_every = 2 if intensity < 2 else int(self.rng.choice([1, 2]))
        cymbal = HAT_CLOSED if intensity < 2 or self.rng.random() < 0.5 else RIDE
        for s in range(16):
            t = t0 + s * step + self.jitter()
            t = max(t, 0.0)
            if intensity > 0 and s in kicks:
                _add(inst, KICK, t, t + step, 100 + int(self.rng.integers(-10, 20)))
            if intensity > 0 and s in snares:
                _add(inst, SNARE, t, t + step, 95 + int(self.rng.integers(-15, 25)))
            if s % hat_every == 0:
                pitch = HAT_OPEN if (s == 14 and self.rng.random() < 0.3) else cymbal
                accent = 15 if s % 4 == 0 else 0
                _add(inst, pitch, t, t + step, 60 + accent + int(self.rng.integers(-10, 15)))
            if intensity == 0 and s in (0, 8) and self.rng.random() < 0.6:
                _add(inst, KICK, t, t + step, 80)
        if last and intensity > 0 and self.rng.random() < 0.7:  # a fill into the next section
            for s in range(12, 16):
                t = t0 + s * step
                tom = (TOM_HIGH, TOM_HIGH, TOM_LOW, SNARE)[s - 12]
                _add(inst, tom, t, t + step, 100)

    def bass(self, inst: pretty_midi.Instrument, t0: float, degree: int, style: int) -> None:
        root = _chord(self.scale, self.key, degree, 1)[0]
        fifth = _chord(self.scale, self.key, degree, 1)[2]
        if root < 33:
            root, fifth = root + 12, fifth + 12
        if style == 0:  # whole notes
            hits = [(0.0, 4.0, root)]
        elif style == 1:  # root-fifth halves
            hits = [(0.0, 2.0, root), (2.0, 2.0, fifth)]
        elif style == 2:  # driving eighths
            hits = [(i / 2, 0.45, root) for i in range(8)]
        else:  # syncopated
            hits = [(0.0, 1.4, root), (1.5, 0.5, root), (2.5, 1.0, fifth), (3.5, 0.5, root + 12)]
        for beat, length, pitch in hits:
            t = max(t0 + beat * self.beat + self.jitter(), 0.0)
            _add(
                inst, pitch, t, t + length * self.beat * 0.95, 90 + int(self.rng.integers(-10, 15))
            )

    def chords(self, inst: pretty_midi.Instrument, t0: float, degree: int, style: int) -> None:
        notes = _chord(self.scale, self.key, degree, 4)
        if self.rng.random() < 0.5:  # an inversion now and then
            notes = [*notes[1:], notes[0] + 12]
        vel = 60 + int(self.rng.integers(-10, 15))
        if style == 0:  # held chord
            for p in notes:
                _add(inst, p, t0, t0 + self.bar * 0.98, vel)
        else:  # comping on beats 1 and 3, or on every beat
            beats = (0, 2) if style == 1 else (0, 1, 2, 3)
            for b in beats:
                t = max(t0 + b * self.beat + self.jitter(), 0.0)
                for p in notes:
                    _add(inst, p, t, t + self.beat * 0.8, vel)

    def arpeggio(self, inst: pretty_midi.Instrument, t0: float, degree: int) -> None:
        notes = _chord(self.scale, self.key, degree, 5)
        pattern = [notes[0], notes[1], notes[2], notes[1]]
        for i in range(8):
            t = max(t0 + i * self.beat / 2 + self.jitter(), 0.0)
            _add(inst, pattern[i % 4], t, t + self.beat * 0.45, 55 + int(self.rng.integers(0, 20)))

    def melody(self, inst: pretty_midi.Instrument, t0: float, degree: int, prev: int) -> int:
        """One bar of lead melody: chord tones on strong beats, scale steps between, rests."""
        chord = _chord(self.scale, self.key, degree, 4)
        lo, hi = 57, 79
        scale_pitches = [
            p for p in range(lo, hi + 1) if (p - self.key) % 12 in {s % 12 for s in self.scale}
        ]
        t = 0.0
        pitch = prev
        while t < 4.0 - 1e-6:
            length = float(self.rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            length = min(length, 4.0 - t)
            if self.rng.random() < 0.2:  # a rest: phrases breathe
                t += length
                continue
            if t in (0.0, 2.0):
                targets = [p + 12 * o for p in chord for o in (-1, 0, 1)]
                targets = [p for p in targets if lo <= p <= hi]
                pitch = min(targets, key=lambda p: abs(p - pitch) + self.rng.random() * 5)
            else:
                idx = int(np.argmin([abs(p - pitch) for p in scale_pitches]))
                idx = int(np.clip(idx + self.rng.integers(-2, 3), 0, len(scale_pitches) - 1))
                pitch = scale_pitches[idx]
            start = max(t0 + t * self.beat + self.jitter(), 0.0)
            vel = 80 + int(self.rng.integers(-15, 20))
            _add(inst, pitch, start, start + length * self.beat * 0.92, vel)
            t += length
        return pitch


def compose_song(seed: int, index: int, max_seconds: float = 30.0) -> Song:
    """Song ``index`` of ``seed``: its form is cut to whole bars within ``max_seconds``."""
    rng = np.random.default_rng([seed, index])
    tempo = float(rng.uniform(80, 150))
    key = int(rng.integers(12))
    minor = bool(rng.random() < 0.4)
    comp = _Composer(rng, tempo, key, minor)
    form = FORMS[int(rng.integers(len(FORMS)))]
    n_bars_max = max(1, int((max_seconds - 1.0) // comp.bar))
    vocal_prog = int(rng.choice(VOCAL_PROGRAMS))
    bass_prog = int(rng.choice(BASS_PROGRAMS))
    chord_prog = int(rng.choice(CHORD_PROGRAMS))
    arp_prog = int(rng.choice(ARP_PROGRAMS)) if rng.random() < 0.6 else -1
    kit = int(rng.choice(DRUM_KITS))
    vocals = pretty_midi.Instrument(program=vocal_prog, name="vocals")
    drums = pretty_midi.Instrument(program=kit, is_drum=True, name="drums")
    bass = pretty_midi.Instrument(program=bass_prog, name="bass")
    chords = pretty_midi.Instrument(program=chord_prog, name="chords")
    arp = pretty_midi.Instrument(program=max(arp_prog, 0), name="arpeggio")
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bar = 0
    pitch = 64 + key % 12
    used_form: list[str] = []
    for section in form:
        n_bars, sung, intensity = SECTIONS[section]
        if bar >= n_bars_max:
            break
        used_form.append(section)
        if section in ("chorus", "bridge") and rng.random() < 0.5:
            progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
        bass_style = int(rng.integers(4))
        chord_style = int(rng.integers(3))
        for b in range(min(n_bars, n_bars_max - bar)):
            t0 = bar * comp.bar
            degree = progression[b % len(progression)]
            comp.drums(drums, t0, intensity, last=b == n_bars - 1)
            if section != "intro" or b >= n_bars // 2:
                comp.bass(bass, t0, degree, bass_style)
            comp.chords(chords, t0, degree, chord_style)
            if arp_prog >= 0 and intensity > 0:
                comp.arpeggio(arp, t0, degree)
            if sung:
                pitch = comp.melody(vocals, t0, degree, pitch)
            bar += 1
    seconds = bar * comp.bar + 1.0  # room for the last notes' release
    parts: dict[str, pretty_midi.PrettyMIDI] = {}
    others = [chords, *([arp] if arp.notes else [])]
    for stem, insts in (("vocals", [vocals]), ("drums", [drums]), ("bass", [bass])):
        parts[stem] = _midi(tempo, insts)
    parts["other"] = _midi(tempo, others)
    programs = {
        "vocals": (vocal_prog,),
        "drums": (kit,),
        "bass": (bass_prog,),
        "other": tuple(i.program for i in others),
    }
    return Song(
        name=f"song{index:04d}",
        seed=(seed, index),
        tempo=tempo,
        key=key,
        minor=minor,
        form=tuple(used_form),
        programs=programs,
        parts=parts,
        seconds=seconds,
    )


def _midi(tempo: float, instruments: list[pretty_midi.Instrument]) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.instruments.extend(instruments)
    return pm

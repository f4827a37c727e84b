"""Reading a Prometheus text exposition in tests: scrape, parse, sum samples by labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample line of an exposition (comments skipped)."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        samples.append(Sample(name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


async def scrape(address: str) -> list[Sample]:
    """The samples served at ``http://address/metrics``."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{address}/metrics", timeout=10)
    response.raise_for_status()
    return parse(response.text)


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )

"""Where the filter sits in a pipeline, and the VAD it must gate.

Pipecat runs the VAD in one of two places (DESIGN.md section 1):

- a ``VADProcessor`` ahead of the STT: its VAD frames pass through the filter, which
  holds them while the bot speaks;
- inside the user aggregator (``LLMUserAggregatorParams(vad_analyzer=...)``, every
  Pipecat getting-started example): the aggregator's VAD frames start a user turn
  inside the aggregator, where no processor upstream can hold them.

In the second shape the filter adopts the aggregator's VAD: it takes the analyzer out
of the aggregator and runs it itself, exactly as a ``VADProcessor`` would (same
frames, broadcast in both directions). The aggregator then sees the VAD frames the
filter lets through, so both shapes reach the same decision with the same controls.

``LLMUserAggregator`` has no public accessor for its VAD, so adopting it reads two
private attributes (``_params``, ``_vad_controller``, pipecat-ai 1.14). If either is
missing, :func:`inspect_placement` says so, and the filter warns once naming the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport

# A pipeline longer than this is not one anybody builds; it also stops a cycle.
_MAX_HOPS = 256

FIX_VAD_PROCESSOR = (
    "move the VAD out of LLMUserAggregatorParams(vad_analyzer=...) into "
    "VADProcessor(vad_analyzer=...) right after transport.input(), or use "
    "SoftAckUserTurnStartStrategy as the aggregator's start strategy"
)


def _walk(processor: FrameProcessor, attr: str) -> Iterator[FrameProcessor]:
    """Processors after (``attr="next"``) or before (``"previous"``) ``processor`` in
    its pipeline, each followed by the processors nested inside it (``processors``)."""
    node = getattr(processor, attr)
    for _ in range(_MAX_HOPS):
        if node is None:
            return
        yield node
        stack = list(node.processors)
        while stack:
            inner = stack.pop(0)
            yield inner
            stack[:0] = inner.processors
        node = getattr(node, attr)


def first_output_transport(root: FrameProcessor) -> BaseOutputTransport | None:
    """The first ``BaseOutputTransport`` in ``root`` or the processors nested in it
    (depth first, in pipeline order), or None."""
    stack = [root]
    while stack:
        node = stack.pop(0)
        if isinstance(node, BaseOutputTransport):
            return node
        stack[:0] = node.processors
    return None


@dataclass
class Placement:
    """What the filter found around itself at setup.

    Attributes:
        aggregator: The first ``LLMUserAggregator`` downstream, or None.
        vad_analyzer: The analyzer taken over from ``aggregator`` (canonical shape),
            or None when the aggregator runs no VAD or it could not be adopted.
        audio_idle_timeout: The aggregator's ``audio_idle_timeout`` (seconds), for the
            adopted VAD.
        vad_upstream: A ``VADProcessor`` runs ahead of the filter.
        output: The first output transport downstream (what the bot plays), or None.
        warnings: What cannot work in this placement, each naming the fix.
    """

    aggregator: LLMUserAggregator | None = None
    vad_analyzer: VADAnalyzer | None = None
    audio_idle_timeout: float = 1.0
    vad_upstream: bool = False
    output: BaseOutputTransport | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> str:
        """``"vad-in-aggregator"``, ``"vad-processor"`` or ``"no-vad"``."""
        if self.vad_analyzer is not None:
            return "vad-in-aggregator"
        return "vad-processor" if self.vad_upstream else "no-vad"


def inspect_placement(processor: FrameProcessor, *, adopt_vad: bool = True) -> Placement:
    """Find the user aggregator and the VADs around ``processor``.

    Args:
        processor: The filter, already linked into its pipeline.
        adopt_vad: Take the VAD out of a downstream aggregator that runs one (the
            aggregator stops running it; the caller must run it from then on).

    Returns:
        The :class:`Placement`; ``warnings`` is empty when the filter can gate every
        turn start.
    """
    placement = Placement()
    after = list(_walk(processor, "next"))
    placement.aggregator = next((p for p in after if isinstance(p, LLMUserAggregator)), None)
    placement.output = next((p for p in after if isinstance(p, BaseOutputTransport)), None)
    before = list(_walk(processor, "previous"))
    placement.vad_upstream = any(isinstance(p, VADProcessor) for p in before)

    if placement.aggregator is None:
        if any(isinstance(p, LLMUserAggregator) for p in before):
            placement.warnings.append(
                "it is placed after the user aggregator, which starts user turns (and "
                "interrupts the bot) before the filter sees them: place it between the "
                "STT and the LLMUserAggregator"
            )
        else:
            placement.warnings.append(
                "no LLMUserAggregator follows it in this pipeline, so nothing it holds "
                "decides a user turn: place it between the STT and the user aggregator"
            )
        return placement

    aggregator = placement.aggregator
    params = getattr(aggregator, "_params", None)
    analyzer = getattr(params, "vad_analyzer", None)
    if analyzer is None:
        if getattr(aggregator, "_vad_controller", None) is not None:
            placement.warnings.append(
                "the user aggregator runs a VAD whose analyzer this Pipecat version does "
                f"not expose, so the filter cannot gate it: {FIX_VAD_PROCESSOR}"
            )
        return placement
    if placement.vad_upstream:
        placement.warnings.append(
            "the pipeline runs two VADs (a VADProcessor and the user aggregator's "
            "vad_analyzer), so every speech start arrives twice: remove one"
        )
    if not adopt_vad:
        return placement
    if not hasattr(aggregator, "_vad_controller"):
        placement.warnings.append(
            "this Pipecat version's LLMUserAggregator does not expose its VAD "
            f"controller, so the filter cannot gate the aggregator's VAD: {FIX_VAD_PROCESSOR}"
        )
        return placement
    aggregator._vad_controller = None  # the filter runs this VAD from now on
    placement.vad_analyzer = analyzer
    placement.audio_idle_timeout = getattr(params, "audio_idle_timeout", 1.0)
    return placement

"""When a failed delivery is tried again, when it is given up, and when its receiver is paused."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """`backoff[n - 1]` seconds after the n-th failed attempt (the last entry for later ones);
    given up after `max_attempts`. A receiver whose attempts failed `pause_after` times in a
    row (over all its deliveries) is paused. Tests pass short schedules."""

    backoff: tuple[float, ...] = (10, 30, 120, 600, 1800, 3600, 3600)
    max_attempts: int = 8
    pause_after: int = 10

    def __post_init__(self) -> None:
        if not self.backoff or any(s < 0 for s in self.backoff) or self.max_attempts < 1 or self.pause_after < 1:
            raise ValueError("a retry policy needs a non-negative back-off and at least one attempt")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after `attempts` (>= 1) failed attempts."""
        return self.backoff[min(max(attempts, 1), len(self.backoff)) - 1]

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def pauses(self, consecutive_failures: int) -> bool:
        return consecutive_failures >= self.pause_after

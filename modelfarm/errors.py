"""What the farm's client raises."""

import httpx


class ApiError(Exception):
    """An error answer: its HTTP status and the API's `detail`."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail

    def __str__(self) -> str:
        return f"{self.detail} (HTTP {self.status_code})"

    @classmethod
    def of(cls, response: httpx.Response) -> "ApiError":
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:500] or response.reason_phrase
        return cls(response.status_code, detail if isinstance(detail, str) else str(detail))

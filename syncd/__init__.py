"""syncd: keeps a B2B portal's customer accounts in step with the ERP."""

from __future__ import annotations

__version__ = "0.1.0"

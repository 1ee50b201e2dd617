"""The versions of nerftune and the stack it drives, read from the installed packages' metadata (nothing imported):
what a sweep records with its results, and what `nerftune --version` prints for a bug report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

SWEEP_PACKAGES = ("nerftune", "nerfstudio", "ray", "torch", "optuna", "mlflow")  # what a sweep's numbers depend on


def installed_versions(packages: tuple[str, ...] = SWEEP_PACKAGES) -> dict[str, str]:
    """Each package's installed version, or "not installed"."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def version_line() -> str:
    """`nerftune 0.1.0 (nerfstudio 1.1.5, ray 2.60.0, ...)`, pycolmap's too (it prepares the data)."""
    versions = installed_versions((*SWEEP_PACKAGES, "pycolmap"))
    nerftune = versions.pop("nerftune")
    return f"nerftune {nerftune} ({', '.join(f'{name} {found}' for name, found in versions.items())})"

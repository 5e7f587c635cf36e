"""Linear least squares in float64: where (S)GD on a linear model ends up, and
the Gram-matrix solves MUSO's closed form needs.

Rows of ``Z`` are feature vectors (samples × features); weights ``W`` are
features × outputs, so a model's outputs are ``Z @ W``.  Every solve is a
Cholesky factorisation of a Gram matrix (N × N when there are fewer samples
than features, M × M otherwise), with a minimum-norm least-squares fallback
when that matrix is numerically singular (e.g. duplicate inputs).  No explicit
inverse is ever formed; a ridge is added only where a caller asks for one.
"""
from __future__ import annotations

import torch


def gram_solve(a: torch.Tensor, rhs: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """``(a aᵀ + ridge·I)⁻¹ rhs`` in float64.

    Cholesky when ``a aᵀ + ridge·I`` is numerically positive definite; else the
    minimum-norm least-squares solution (the pseudo-inverse, by SVD on the CPU).
    """
    a, rhs = a.double(), rhs.double()
    gram = a @ a.T
    if ridge:
        gram.diagonal().add_(ridge)
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor)
    solution = torch.linalg.lstsq(gram.cpu(), rhs.cpu(), driver="gelsd").solution
    return solution.to(rhs.device)


def least_squares_limit(z: torch.Tensor, targets: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """The point (S)GD on ``½‖Z W − T‖²`` converges to from ``W = start``:
    ``start + Z⁺(T − Z start)``.

    Every gradient ``Zᵀ(ZW − T)`` lies in the row space of Z, so the iterates
    never leave ``start + rowspace(Z)``; when Z has more columns than rows the
    limit is the interpolating solution closest to ``start`` (computed in the
    N-dimensional dual), otherwise the least-squares solution (computed in the
    primal).  Holds for plain, mini-batch and momentum SGD without weight decay.
    """
    z, targets, start = z.double(), targets.double(), start.double()
    residual = targets - z @ start
    if z.shape[0] <= z.shape[1]:
        return start + z.T @ gram_solve(z, residual)
    return start + gram_solve(z.T, z.T @ residual)


def project_rows(z: torch.Tensor, v: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """``Π v`` with ``Π = Zᵀ(ZZᵀ + ridge·I)⁻¹Z``: the projector onto the row
    space of Z (ridge 0), or its ridge-regularised version.

    Uses the N × N form or, when Z has more rows than columns, the equal
    ``(ZᵀZ + ridge·I)⁻¹ZᵀZ`` (M × M), whichever is smaller.
    """
    z, v = z.double(), v.double()
    if z.shape[0] <= z.shape[1]:
        return z.T @ gram_solve(z, z @ v, ridge)
    return gram_solve(z.T, z.T @ (z @ v), ridge)


def ridge_fit(z: torch.Tensor, u: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """``Zᵀ(ZZᵀ + ridge·I)⁻¹ u`` (equal to ``(ZᵀZ + ridge·I)⁻¹Zᵀu`` for ridge > 0, the
    minimum-norm least-squares fit of ``u`` for ridge 0), in the smaller of the two forms."""
    z, u = z.double(), u.double()
    if z.shape[0] <= z.shape[1]:
        return z.T @ gram_solve(z, u, ridge)
    return gram_solve(z.T, z.T @ u, ridge)

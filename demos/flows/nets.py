"""The flows themselves (torch): planar layers, RealNVP affine couplings, and a continuous
flow whose velocity field is learned by flow matching. Imported lazily (never by ``ui.py``).

Conventions, shared by every layer:

* the generative direction maps base to data, ``x = f(z)``; a flow is ``f = f_K o ... o f_1``;
* ``layer.forward(z, log_det=True) -> (x, log|det dx/dz|)`` (continuous slices skip the
  log-det's cost when ``log_det=False``) and ``layer.inverse(x) -> (z, log|det dz/dx|)``,
  each log-det of shape (N,);
* change of variables: ``log p(x) = log N(z; 0, I) + sum_k log|det dz_{k-1}/dz_k|``.

A ``Flow`` works in standardised coordinates ``(x - mu) / sigma`` (a fixed affine map fitted
to the training data, so one set of hyper-parameters suits every data set); ``log_prob``
takes and returns data coordinates.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)
S_MAX = 3.0  # soft bound on a coupling's log-scale per layer


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) for z of shape (N, 2)."""
    return -0.5 * (z**2).sum(1) - LOG_2PI


def init_linear_(module: nn.Module, generator: torch.Generator, zero_last: bool = False) -> None:
    """PyTorch's default Linear init, drawn from ``generator`` (no global RNG: many users share
    the process). ``zero_last`` makes the last Linear output 0, so the layer starts as identity."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, linear in enumerate(linears):
            bound = 1 / math.sqrt(linear.in_features)
            scale = 0.0 if zero_last and i == len(linears) - 1 else 1.0
            linear.weight.copy_(scale * bound * (2 * torch.rand(linear.weight.shape, generator=generator) - 1))
            linear.bias.copy_(scale * bound * (2 * torch.rand(linear.bias.shape, generator=generator) - 1))


def mlp(n_in: int, n_out: int, hidden: int, n_hidden: int) -> nn.Sequential:
    sizes = [n_in] + [hidden] * n_hidden
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], n_out))


class AffineCoupling(nn.Module):
    """RealNVP affine coupling (Dinh, Sohl-Dickstein & Bengio 2017), in 2-D.

    Coordinate ``a`` passes unchanged and conditions coordinate ``b``:
        x_a = z_a,   x_b = z_b * exp(s(z_a)) + t(z_a),   log|det dx/dz| = s(z_a).
    The inverse is as cheap: z_b = (x_b - t(x_a)) * exp(-s(x_a)).
    """

    def __init__(self, a: int, generator: torch.Generator, hidden: int = 64):
        super().__init__()
        self.a, self.b = a, 1 - a
        self.net = mlp(1, 2, hidden, 2)  # z_a (N, 1) -> (s, t) (N, 2)
        init_linear_(self.net, generator, zero_last=True)

    def scale_shift(self, z_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(z_a[:, None]).unbind(1)  # (N,), (N,)
        return S_MAX * torch.tanh(raw_s / S_MAX), t

    def join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Put the (N,) coordinates a and b back in place: (N, 2)."""
        return torch.stack([a, b] if self.a == 0 else [b, a], 1)

    def forward(self, z: torch.Tensor, log_det: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.scale_shift(z[:, self.a])
        return self.join(z[:, self.a], z[:, self.b] * torch.exp(s) + t), s

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.scale_shift(x[:, self.a])
        return self.join(x[:, self.a], (x[:, self.b] - t) * torch.exp(-s)), -s


class Planar(nn.Module):
    """A planar layer (Rezende & Mohamed 2015), used in the normalising direction:

        z = g(x) = x + u_hat tanh(w^T x + b),   log|det dz/dx| = log|1 + u_hat^T w tanh'(w^T x + b)|,

    with ``u_hat = u + (m(w^T u) - w^T u) w / |w|^2``, ``m(a) = -1 + softplus(a)``, so that
    ``w^T u_hat > -1`` and g is invertible. g has no closed-form inverse: the generative
    direction solves g(x) = z along w by bisection (alpha = w^T x is the only unknown).
    """

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.w = nn.Parameter(0.5 * torch.randn(2, generator=generator))
        self.u = nn.Parameter(0.1 * torch.randn(2, generator=generator))
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        wu = self.w @ self.u
        return self.u + (nn.functional.softplus(wu) - 1 - wu) * self.w / (self.w @ self.w)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u_hat = self.u_hat()
        h = torch.tanh(x @ self.w + self.b)  # (N,)
        z = x + h[:, None] * u_hat
        return z, torch.log(torch.abs(1 + (1 - h**2) * (u_hat @ self.w)))

    @torch.no_grad()
    def forward(self, z: torch.Tensor, log_det: bool = True, n_iter: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
        """x = g^{-1}(z): solve alpha + c tanh(alpha + b) = w^T z (c = w^T u_hat > -1, so the left
        side increases with alpha and the root lies within |c| of w^T z)."""
        u_hat = self.u_hat()
        c, target = u_hat @ self.w, z @ self.w  # (), (N,)
        low, high = target - c.abs() - 1e-6, target + c.abs() + 1e-6
        for _ in range(n_iter):
            alpha = (low + high) / 2
            too_big = alpha + c * torch.tanh(alpha + self.b) > target
            high, low = torch.where(too_big, alpha, high), torch.where(too_big, low, alpha)
        x = z - torch.tanh((low + high) / 2 + self.b)[:, None] * u_hat
        return x, -self.inverse(x)[1]


class Velocity(nn.Module):
    """The velocity field v_theta(x, t) of a continuous flow dx/dt = v(x, t), t in [0, 1]."""

    def __init__(self, generator: torch.Generator, hidden: int = 128):
        super().__init__()
        self.net = mlp(3, 2, hidden, 4)  # 4 x 128 beat 3 x 64 by ~0.3 nats held-out on two moons
        init_linear_(self.net, generator)

    def forward(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(len(x), 1)  # (N, 1)
        return self.net(torch.cat([x, t], 1))  # (N, 2)

    def with_divergence(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(v, div v) with the exact divergence tr(dv/dx) = dv_1/dx_1 + dv_2/dx_2 (two backward
        passes: in 2-D there is no need for Hutchinson's estimator)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = self(x, t)
            d1 = torch.autograd.grad(v[:, 0].sum(), x, retain_graph=True)[0][:, 0]
            d2 = torch.autograd.grad(v[:, 1].sum(), x)[0][:, 1]
        return v.detach(), (d1 + d2).detach()


class TimeSlice(nn.Module):
    """One "layer" of a continuous flow: the flow map of dx/dt = v(x, t) from t0 to t1,
    integrated with ``n_steps`` classical Runge-Kutta (RK4) steps.

    Its log-det follows the instantaneous change of variables (Chen et al. 2018):
        d/dt log|det dx_t/dz| = div v(x_t, t),   so  log|det dx/dz| = int_{t0}^{t1} div v dt.
    All slices share one ``Velocity``.
    """

    def __init__(self, velocity: Velocity, t0: float, t1: float, n_steps: int):
        super().__init__()
        self.velocity, self.t0, self.t1, self.n_steps = velocity, t0, t1, n_steps

    def integrate(self, x: torch.Tensor, t_start: float, t_end: float, log_det: bool):
        """RK4 from t_start to t_end on (x, a) with da/dt = div v; returns (x, a) (a: (N,))."""
        h = (t_end - t_start) / self.n_steps
        a = torch.zeros(len(x), dtype=x.dtype)
        f = self.velocity.with_divergence if log_det else (lambda y, t: (self.velocity(y, t), 0.0))
        for i in range(self.n_steps):
            t = t_start + i * h
            k1, d1 = f(x, t)
            k2, d2 = f(x + h / 2 * k1, t + h / 2)
            k3, d3 = f(x + h / 2 * k2, t + h / 2)
            k4, d4 = f(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            a = a + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
        return x, a

    def forward(self, z: torch.Tensor, log_det: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return self.integrate(z, self.t0, self.t1, log_det)

    def inverse(self, x: torch.Tensor, log_det: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return self.integrate(x, self.t1, self.t0, log_det)

    def path(self, z: torch.Tensor) -> torch.Tensor:
        """Positions after every RK4 step, (n_steps, N, 2), for drawing trajectories."""
        h = (self.t1 - self.t0) / self.n_steps
        points = []
        for i in range(self.n_steps):
            slice_i = TimeSlice(self.velocity, self.t0 + i * h, self.t0 + (i + 1) * h, 1)
            z = slice_i(z, log_det=False)[0]
            points.append(z)
        return torch.stack(points)


class Flow(nn.Module):
    """A chain of layers in standardised coordinates, plus the fixed map to data coordinates
    x_data = mu + sigma * x (log|det| = sum log sigma)."""

    def __init__(self, layers: list[nn.Module], mu: torch.Tensor, sigma: torch.Tensor):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.register_buffer("mu", mu)  # (2,)
        self.register_buffer("sigma", sigma)  # (2,)

    def to_base(self, x: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert the first ``k`` layers (all by default): x_k -> (z, log|det dz/dx_k|)."""
        log_det = torch.zeros(len(x), dtype=x.dtype)
        for layer in reversed(self.layers[: len(self.layers) if k is None else k]):
            x, ld = layer.inverse(x)
            log_det = log_det + ld
        return x, log_det

    def stages(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[z, f_1(z), f_2(f_1(z)), ...]: K + 1 tensors of shape (N, 2)."""
        out = [z]
        for layer in self.layers:
            out.append(layer(out[-1], log_det=False)[0])
        return out

    def standardise(self, x_data: torch.Tensor) -> torch.Tensor:
        return (x_data - self.mu) / self.sigma

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu + self.sigma * x

    def log_prob(self, x_data: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """log p_k(x) in data coordinates after ``k`` layers (all by default):
        log N(z) + log|det dz/dx_k| - sum log sigma."""
        z, log_det = self.to_base(self.standardise(x_data), k)
        return standard_normal_log_prob(z) + log_det - torch.log(self.sigma).sum()


def realnvp(n_layers: int, mu, sigma, generator: torch.Generator) -> Flow:
    """Affine couplings alternating which coordinate is transformed."""
    return Flow([AffineCoupling(k % 2, generator) for k in range(n_layers)], mu, sigma)


def planar(n_layers: int, mu, sigma, generator: torch.Generator) -> Flow:
    return Flow([Planar(generator) for _ in range(n_layers)], mu, sigma)


def continuous(n_layers: int, mu, sigma, generator: torch.Generator, ode_steps: int = 16) -> Flow:
    """One velocity field, its flow cut into ``n_layers`` time slices [k/K, (k+1)/K]; every slice
    gets ceil(ode_steps / K) RK4 steps (16 in all already agree with 64 to 1e-4 nats on the
    targets here: flow matching's straight paths give a smooth, nearly straight ODE)."""
    velocity = Velocity(generator)
    steps = max(1, math.ceil(ode_steps / n_layers))
    return Flow([TimeSlice(velocity, k / n_layers, (k + 1) / n_layers, steps) for k in range(n_layers)], mu, sigma)

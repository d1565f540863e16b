"""Independent NumPy references for the layers (written from the paper,
arXiv 2004.01961, and MnasNet's block, not from the layer code)."""

import numpy as np


def same_pad(x, k, stride):
  """TF 'same' padding of an [N, H, W, C] array for kernel k and stride."""
  n, h, w, c = x.shape
  pads = []
  for size in (h, w):
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    pads.append((total // 2, total - total // 2))
  return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])


def depthwise(x, kernel, stride=1):
  """kernel: [k, k, C, 1]."""
  k = kernel.shape[0]
  xp = same_pad(x, k, stride)
  n, h, w, c = x.shape
  ho, wo = -(-h // stride), -(-w // stride)
  out = np.zeros((n, ho, wo, c), np.float64)
  for i in range(k):
    for j in range(k):
      patch = xp[:, i:i + (ho - 1) * stride + 1:stride, j:j + (wo - 1) * stride + 1:stride, :]
      out += patch * kernel[i, j, :, 0]
  return out


def conv(x, kernel, bias=None, stride=1):
  """kernel: [k, k, Cin, Cout]."""
  k = kernel.shape[0]
  xp = same_pad(x, k, stride)
  n, h, w, c = x.shape
  ho, wo = -(-h // stride), -(-w // stride)
  out = np.zeros((n, ho, wo, kernel.shape[3]), np.float64)
  for i in range(k):
    for j in range(k):
      patch = xp[:, i:i + (ho - 1) * stride + 1:stride, j:j + (wo - 1) * stride + 1:stride, :]
      out += patch @ kernel[i, j]
  return out if bias is None else out + bias


def bn(x, gamma, beta, mean, var, eps=1e-3):
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def swish(x):
  return x / (1 + np.exp(-x))


def hard_swish(x):
  return x * np.clip(x + 3, 0, 6) / 6


def relu6(x):
  return np.clip(x, 0, 6)


ACTIVATIONS = {"swish": swish, "hard_swish": hard_swish, "relu6": relu6}


def sigmoid(x):
  return 1 / (1 + np.exp(-x))


def lightnl_y(x, ratio, stride, order="A", norm="none"):
  """y = (q k^T) v / (H W), by explicit loops over positions for order A;
  `norm="second_moment"` divides each image's y by mean(x^2) + 1e-3."""
  n, h, w, c = x.shape
  rc = int(ratio * c)
  q = x[..., :rc].reshape(n, h * w, rc)
  xs = x[:, ::stride, ::stride, :]
  k = xs[..., :rc].reshape(n, -1, rc)
  v = xs.reshape(n, -1, c)
  if order == "A":
    y = np.einsum("npr,nmr->npm", q, k) @ v
  else:
    y = q @ np.einsum("nmr,nmc->nrc", k, v)
  y = (y / (h * w)).reshape(n, h, w, c)
  if norm == "second_moment":
    y = y / ((x ** 2).mean(axis=(1, 2, 3)) + 1e-3)[:, None, None, None]
  return y


def lightnl(x, ratio, stride, dw_kernel, gamma, beta, mean, var, eps=1e-3, order="A",
            norm="none"):
  y = lightnl_y(x, ratio, stride, order, norm)
  return x + bn(depthwise(y, dw_kernel), gamma, beta, mean, var, eps)


def nonlocal_block(x, wt, bt, wp, bp, wg, bg, wo, gamma, beta, mean, var, eps=1e-3):
  n, h, w, c = x.shape
  theta = (x @ wt + bt).reshape(n, h * w, -1)
  phi = (x @ wp + bp).reshape(n, h * w, -1)
  g = (x @ wg + bg).reshape(n, h * w, -1)
  a = theta @ phi.transpose(0, 2, 1)
  a = np.exp(a - a.max(-1, keepdims=True))
  a /= a.sum(-1, keepdims=True)
  y = (a @ g).reshape(n, h, w, -1)
  return x + bn(y @ wo, gamma, beta, mean, var, eps)


def split_channels(total, groups):
  split = [total // groups] * groups
  split[0] += total - sum(split)
  return split

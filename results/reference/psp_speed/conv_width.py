"""Does a pruned width cost its MACs? Forward + backward time of one 3x3 convolution (and with train-mode BatchNorm)
at 32x32, batch 128, 2 threads, by channel count: the first stage of a CIFAR ResNet, full (16) and pruned."""

import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)
images = torch.randn(128, 16, 32, 32)
for channels in [16, 12, 11, 9, 8, 7, 4]:
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(channels)
    x = images[:, :channels].contiguous().requires_grad_()
    median = {}
    for part in ["conv", "conv+bn"]:
        times = []
        for _ in range(33):  # the first 3 build the kernels: not timed
            start = time.perf_counter()
            y = conv(x) if part == "conv" else bn(conv(x))
            y.sum().backward()
            times.append(time.perf_counter() - start)
        times = sorted(times[3:])
        median[part] = times[len(times) // 2]
    print(f"{channels:3d} channels: MACs {(channels / 16) ** 2:.2f}x  conv fwd+bwd {median['conv'] * 1e3:6.1f} ms  "
          f"+bn {median['conv+bn'] * 1e3:6.1f} ms")

// minidl: the one header an application includes. It brings in every public floor: core, tensor, backends,
// autograd, nn (modules, losses, models), optim, data (datasets, transforms, loader) and quant (schemes as ops,
// quantized layers and models). Backend internals (backends/cpu, backends/cuda) are not part of it.
#pragma once

#include "core/error.h"
#include "core/threads.h"
#include "tensor/alloc_trace.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "tensor/safetensors.h"
#include "tensor/tensor.h"
#include "backends/backend.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/grad_hooks.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "nn/nn.h"
#include "optim/optim.h"
#include "data/data.h"
#include "distributed/distributed.h"
#include "quant/quant.h"

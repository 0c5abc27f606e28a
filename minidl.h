// minidl: the one header an application includes.
#pragma once

#include "core/error.h"
#include "core/threads.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "tensor/safetensors.h"
#include "tensor/tensor.h"
#include "backends/backend.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"

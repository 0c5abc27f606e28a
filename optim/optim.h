// Everything in optim/: optimizers (SGD, Adam/AdamW, the hysteresis optimizer), LR schedulers, gradient clipping.
#pragma once

#include "optim/adam.h"
#include "optim/clip_grad.h"
#include "optim/hysteresis.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"

// conveyor/conveyor.hpp: the core, and nothing heavy. Threads come with the
// execution stages; HDF5, Redis, LibTorch and CUDA have headers of their own.
#pragma once

#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/fingerprint.hpp"
#include "conveyor/core/map.hpp"
#include "conveyor/core/order.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/core/plan.hpp"
#include "conveyor/core/progress.hpp"
#include "conveyor/core/settings.hpp"
#include "conveyor/core/state.hpp"
#include "conveyor/core/stats.hpp"
#include "conveyor/core/stream.hpp"
#include "conveyor/core/trace.hpp"
#include "conveyor/exec/parallel.hpp"
#include "conveyor/exec/prefetch.hpp"
#include "conveyor/source/generate.hpp"
#include "conveyor/core/any_pipeline.hpp"

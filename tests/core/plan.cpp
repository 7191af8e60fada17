#include <doctest/doctest.h>
#include <conveyor/core/plan.hpp>

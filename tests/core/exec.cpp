#include <doctest/doctest.h>
#include <conveyor/conveyor.hpp>

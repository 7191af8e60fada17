// expect: two columns of a batch share a name
#include <conveyor/conveyor.hpp>

int main() {
  conveyor::record_batch<conveyor::dense<"x", float>, conveyor::dense<"x", int>> b;
  (void)b;
}

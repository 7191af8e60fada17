#include "conveyor/core/error.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("data_error names file, record and offset") {
  conveyor::data_error e("bit string has 1023 characters, expected 1024", "train.tsv", 17, 4096);
  std::string what = e.what();
  CHECK(what == "train.tsv, record 17, byte offset 4096: bit string has 1023 characters, expected 1024");
  CHECK(e.where().record == 17);
  CHECK(e.message() == "bit string has 1023 characters, expected 1024");
  conveyor::io_error io("cannot open", "x.bin");
  CHECK(std::string(io.what()) == "x.bin: cannot open");
}

TEST_CASE("error policies") {
  CHECK(conveyor::on_error::retry(0).attempts == 1);
  CHECK(conveyor::on_error::retry(3).attempts == 3);
  CHECK(conveyor::on_error::fail != conveyor::on_error::skip);
}

"""Conan 2 recipe for conveyor, a header-only library with optional components.

    conan create . -pr:a tests/package/conan/debian12   # offline, Boost and HDF5 from Debian
    conan create . --build=missing -s compiler.cppstd=20  # Boost and HDF5 from ConanCenter

The package ships conveyor's own CMake config (share/conveyor), the one every
other way of installing it uses, instead of Conan-generated find modules: with
Boost and HDF5 as platform packages there are no Conan components to name
(requires on boost::headers fail), and the config finds exactly what each
requested component needs. The version is read from CMakeLists.txt.
"""
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import load

required_conan_version = ">=2.0"


class ConveyorConan(ConanFile):
    name = "conveyor"
    description = "Header-only C++20 data pipelines and caches for ML training"
    topics = ("machine-learning", "data-loader", "pipeline", "cache", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # One option per optional component; redis, torch and cuda add no Conan
    # requirement (redis uses Boost.Asio from the core's Boost; LibTorch and the
    # CUDA toolkit come from the system, found by conveyor's CMake config).
    options = {
        "with_hdf5": [True, False],
        "with_redis": [True, False],
        "with_torch": [True, False],
        "with_cuda": [True, False],
    }
    default_options = {
        "with_hdf5": True,
        "with_redis": True,
        "with_torch": False,
        "with_cuda": False,
        "boost/*:header_only": True,
    }
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*"
    no_copy_source = True

    def set_version(self):
        cmakelists = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(conveyor VERSION ([0-9.]+)", cmakelists).group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        self.requires("boost/[>=1.81.0 <2]", transitive_headers=True)
        if self.options.with_hdf5:
            self.requires("hdf5/[>=1.10.8 <2]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        check_min_cppstd(self, 20)

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["CONVEYOR_BUILD_TESTS"] = False
        toolchain.cache_variables["CONVEYOR_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["CONVEYOR_BUILD_BENCHMARKS"] = False
        # What the installed package holds must not depend on what the build
        # machine happens to have: look for each dependency only when asked.
        for package, option in (("HDF5", "with_hdf5"), ("Torch", "with_torch"), ("CUDAToolkit", "with_cuda")):
            toolchain.cache_variables[f"CMAKE_DISABLE_FIND_PACKAGE_{package}"] = not self.options.get_safe(option)
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        CMake(self).configure()

    def package(self):
        CMake(self).install()

    def package_info(self):
        # conveyor's own config in share/conveyor; the package folder is a prefix
        # (builddirs go to CMAKE_PREFIX_PATH; with components only theirs count).
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.set_property("cmake_file_name", "conveyor")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "conveyor::core")
        core.set_property("pkg_config_name", "conveyor")
        core.requires = ["boost::boost"]
        core.builddirs = ["."]
        core.system_libs = ["pthread"] if self.settings.os in ("Linux", "FreeBSD") else []
        core.bindirs = []
        core.libdirs = []

        def component(name, requires=()):
            comp = self.cpp_info.components[name]
            comp.set_property("cmake_target_name", f"conveyor::{name}")
            comp.requires = ["core", *requires]
            comp.bindirs = []
            comp.libdirs = []

        if self.options.with_hdf5:
            component("hdf5", ["hdf5::hdf5"])
        if self.options.with_redis:
            component("redis")
        if self.options.with_torch:
            component("torch")
        if self.options.with_cuda:
            component("cuda")

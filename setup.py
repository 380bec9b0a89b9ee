"""pywg: a userspace WireGuard with a C data plane built by cffi."""

from setuptools import find_packages, setup

setup(
    name="pywg",
    version="0.1.0",
    description="Userspace WireGuard: Python control plane, C data plane",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["pywg", "pywg.*"]),
    package_data={"pywg": ["py.typed"], "pywg._tools": ["systemd/*.service"]},
    cffi_modules=["csrc/build_ffi.py:ffibuilder", "csrc/build_crypto.py:ffibuilder"],
    # prometheus_client is imported only when metrics are asked for, rich only by
    # `pywg status`: an idle daemon loads neither.
    install_requires=["cffi>=1.15", "pynacl>=1.5", "uvloop>=0.17", "pyroute2>=0.7",
                      "prometheus_client>=0.20", "rich>=13"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "selenium>=4.10"],
        "dev": ["pytest>=7", "hypothesis>=6", "ruff", "mypy", "selenium>=4.10"],
        "bench": ["matplotlib"],
    },
    entry_points={"console_scripts": ["pywg=pywg._tools.cli:main"]},
    zip_safe=False,
)

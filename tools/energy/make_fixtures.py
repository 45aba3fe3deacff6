#!/usr/bin/env python3
"""Writes the sysfs fixture trees and tegrastats lines under tests/fixtures/energy/.

Layouts, file names and units follow the documentation (see tests/fixtures/energy/README.md); the numbers
are made up for the tests (plausible magnitudes, chosen so that expected joules are easy to compute), never
presented as measurements. Run from anywhere: python3 tools/energy/make_fixtures.py
"""
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "energy"


def tree(name, files):
    base = ROOT / name
    for rel, text in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{text}\n")


def rapl_zone(prefix, name, energy_uj, max_range=262143328850):
    files = {f"{prefix}/name": name, f"{prefix}/energy_uj": energy_uj, f"{prefix}/enabled": 1}
    if max_range is not None:
        files[f"{prefix}/max_energy_range_uj"] = max_range
    return files


def main():
    if ROOT.exists():
        for child in ROOT.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    cls = "sys/class/powercap"
    # Client part: package with core and uncore sub-zones, plus the platform (psys) zone.
    tree("rapl_client", {
        **rapl_zone(f"{cls}/intel-rapl:0", "package-0", 1000000),
        **rapl_zone(f"{cls}/intel-rapl:0:0", "core", 400000),
        **rapl_zone(f"{cls}/intel-rapl:0:1", "uncore", 50000),
        **rapl_zone(f"{cls}/intel-rapl:1", "psys", 3000000),
    })
    # Two-socket server: each package has a dram sub-zone, which the package energy does not include.
    tree("rapl_server", {
        **rapl_zone(f"{cls}/intel-rapl:0", "package-0", 5000000),
        **rapl_zone(f"{cls}/intel-rapl:0:0", "dram", 700000, 65532610987),
        **rapl_zone(f"{cls}/intel-rapl:1", "package-1", 6000000),
        **rapl_zone(f"{cls}/intel-rapl:1:0", "dram", 800000, 65532610987),
    })
    # Only the devices/virtual tree (sub-zones nested inside their package).
    virt = "sys/devices/virtual/powercap/intel-rapl"
    tree("rapl_virtual", {
        **rapl_zone(f"{virt}/intel-rapl:0", "package-0", 2000000),
        **rapl_zone(f"{virt}/intel-rapl:0/intel-rapl:0:0", "core", 1000000),
    })
    # A kernel without max_energy_range_uj: a counter that goes backwards cannot be unwrapped.
    tree("rapl_no_range", rapl_zone(f"{cls}/intel-rapl:0", "package-0", 1000000, None))

    # JetPack 4, Jetson Nano: NVIDIA's ina3221x IIO driver, power in mW per rail.
    iio = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    nano = {}
    for i, (rail, mw, mv, ma) in enumerate([("POM_5V_IN", 2500, 5000, 500), ("POM_5V_GPU", 500, 5000, 100), ("POM_5V_CPU", 1000, 5000, 200)]):
        nano |= {f"{iio}/rail_name_{i}": rail, f"{iio}/in_power{i}_input": mw,
                 f"{iio}/in_voltage{i}_input": mv, f"{iio}/in_current{i}_input": ma}
    tree("jetson_nano_jp4", nano)
    # JetPack 4, TX2: iio_device directory name, two chips; no module input rail at 0-0041.
    tx2 = {}
    for chip, rails in [("0-0040", [("VDD_SYS_GPU", 152), ("VDD_SYS_SOC", 687), ("VDD_4V0_WIFI", 0)]),
                        ("0-0041", [("VDD_IN", 2293), ("VDD_SYS_CPU", 152), ("VDD_SYS_DDR", 420)])]:
        d = f"sys/bus/i2c/drivers/ina3221x/{chip}/iio_device"
        for i, (rail, mw) in enumerate(rails):
            tx2 |= {f"{d}/rail_name_{i}": rail, f"{d}/in_power{i}_input": mw}
    tree("jetson_tx2_jp4", tx2)

    # JetPack 5/6, Orin Nano / NX: mainline ina3221 hwmon, mV and mA per channel, labels from the device tree.
    def hwmon(chip, index, channels, extra=None):
        d = f"sys/bus/i2c/drivers/ina3221/{chip}/hwmon/hwmon{index}"
        files = {f"{d}/name": "ina3221"}
        for i, (label, mv, ma) in enumerate(channels, start=1):
            files |= {f"{d}/in{i}_label": label, f"{d}/in{i}_input": mv, f"{d}/curr{i}_input": ma, f"{d}/in{i}_enable": 1,
                      f"{d}/in{i + 3}_input": ma * 5 // 1000}  # shunt voltage (mV) over the 5 mΩ shunt
        return files | (extra or {})
    tree("jetson_orin_nano_jp5", hwmon("1-0040", 3, [("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 200), ("VDD_SOC", 5000, 400)]))
    # AGX Orin: two chips, unconnected channels labelled NC, hwmon's update_interval (ms) present.
    tree("jetson_agx_orin_jp5", {
        **hwmon("1-0040", 1, [("VDD_GPU_SOC", 5000, 1000), ("VDD_CPU_CV", 5000, 400), ("VIN_SYS_5V0", 5000, 600)], {"sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1/update_interval": 4}),
        **hwmon("1-0041", 2, [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 5000, 100), ("NC", 0, 0)]),
    })
    # Only /sys/class/hwmon (as in a container that mounts that directory alone).
    d = "sys/class/hwmon/hwmon0"
    tree("hwmon_class_only", {f"{d}/name": "ina3221", f"{d}/in1_label": "VDD_IN", f"{d}/in1_input": 5000, f"{d}/curr1_input": 600,
                              "sys/class/hwmon/hwmon1/name": "coretemp", "sys/class/hwmon/hwmon1/temp1_input": 45000})

    # tegrastats lines in the two documented forms, and lines of no known form.
    (ROOT / "tegrastats_nano.txt").write_text(
        "RAM 2594/3956MB (lfb 12x4MB) SWAP 0/1978MB (cached 0MB) CPU [12%@1479,4%@1479,6%@1479,5%@1479] EMC_FREQ 8% GR3D_FREQ 37% "
        "PLL@39C CPU@41C PMIC@100C GPU@38C AO@45.5C thermal@40.25C POM_5V_IN 2532/2698 POM_5V_GPU 0/123 POM_5V_CPU 401/452\n")
    (ROOT / "tegrastats_orin.txt").write_text(
        "11-30-2026 06:40:01 RAM 2472/7620MB (lfb 1181x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,0%@729,1%@729,0%@729,off,off] "
        "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] cpu@48.562C soc2@47.125C soc0@47.718C gpu@47.437C tj@49.312C soc1@47.281C "
        "VDD_IN 5251mW/8535mW VDD_CPU_GPU_CV 512mW/1944mW VDD_SOC 2720mW/3659mW\n")
    # The Orin line without its VDD_SOC rail, to test a rail vanishing from tegrastats' output.
    (ROOT / "tegrastats_orin_no_soc.txt").write_text(
        "11-30-2026 06:40:02 RAM 2472/7620MB CPU [2%@729,0%@729] VDD_IN 5251mW/8535mW VDD_CPU_GPU_CV 512mW/1944mW\n")
    (ROOT / "tegrastats_bad.txt").write_text(
        "RAM 2594/3956MB (lfb 12x4MB) CPU [12%@1479] EMC_FREQ 8%\n"
        "RAM 2472/7620MB VDD_IN 5.2W/8.5W\n"
        "VDD_IN 5251mW/8535\n")
    print(f"wrote {sum(1 for p in ROOT.rglob('*') if p.is_file())} files under {ROOT}")


if __name__ == "__main__":
    main()

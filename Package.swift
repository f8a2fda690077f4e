// swift-tools-version: 6.0
// Keel: a Hyper-V-style virtualization stack on Linux KVM. Layering: see docs/architecture in
// the README. Raw pointers live only in CKVM, KeelSystem and KeelKVM (checked by
// scripts/check-layering).
import PackageDescription

let package = Package(
    name: "Keel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "keel", targets: ["keel"]),
        .executable(name: "keel-worker", targets: ["keel-worker"]),
        .executable(name: "keeld", targets: ["keeld"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Layer 1: linux/kvm.h request numbers, tiny ioctl wrappers, the kick signal handler.
        .target(name: "CKVM"),
        // Layer 2: OS wrappers (file descriptors, eventfd, mmap, guest RAM). May hold raw pointers.
        .target(name: "KeelSystem", dependencies: ["CKVM"]),
        // Layer 2: KVM system, VM and vCPU objects. May hold raw pointers.
        .target(name: "KeelKVM", dependencies: ["CKVM", "KeelSystem"]),
        // Layer 4: pure builders (boot protocol, e820, ACPI, page tables, CPUID). No I/O.
        .target(name: "KeelPlatform"),
        // Layer 4: the Hyper-V interface as pure logic: CPUID leaves, synthetic MSRs, hypercalls, SynIC.
        .target(name: "KeelHyperV", dependencies: ["KeelSystem"]),
        // Layer 4: VMBus protocol as pure logic: messages, GPADLs, ring buffers, channel state.
        .target(name: "KeelVMBus", dependencies: ["KeelSystem"]),
        // Layer 4: integration services (heartbeat, shutdown, time sync) as pure IC protocol logic.
        .target(name: "KeelIntegrationServices", dependencies: ["KeelVMBus", "KeelSystem"]),
        // Layer 4: synthetic SCSI (StorVSP) protocol and SCSI disk emulation as pure logic.
        .target(name: "KeelStorage", dependencies: ["KeelVMBus", "KeelSystem"]),
        // Layer 4: synthetic network (NVSP + RNDIS) protocol as pure logic.
        .target(name: "KeelNetwork", dependencies: ["KeelVMBus", "KeelSystem"]),
        // Layer 5: emulated chipset devices, the I/O buses, and the VMBus devices (integration
        // services, storage, network) on their pure protocol cores. Never imports KVM.
        .target(name: "KeelDevices", dependencies: [
            "KeelSystem", "KeelVMBus", "KeelIntegrationServices", "KeelStorage", "KeelNetwork",
        ]),
        // Layer 6: assembles a partition from a configuration and runs it.
        .target(name: "KeelVM", dependencies: [
            "CKVM", "KeelKVM", "KeelSystem", "KeelPlatform", "KeelDevices", "KeelHyperV", "KeelVMBus",
            "KeelIntegrationServices", "KeelStorage",
        ]),
        // Layer 7: binaries.
        .executableTarget(name: "keel-worker", dependencies: ["KeelVM", "KeelPlatform", "KeelSystem"]),
        .executableTarget(name: "keel", dependencies: [
            "KeelSystem", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "KeelManagement",
        ]),
        // Management: API models, validation, the VM state machine and the state-directory
        // formats (pure; keeld and the CLI share it). keeld: the service on a Unix socket.
        .target(name: "KeelManagement"),
        .executableTarget(name: "keeld", dependencies: ["KeelManagement", "KeelSystem"]),
        // Writes the tiny test kernels for the host benchmarks.
        .executableTarget(name: "keel-tiny-kernel", dependencies: ["KeelTestSupport"]),
        // The NetVSP data path without a VM (fake guest, socket-pair TAP), for profiling.
        .executableTarget(name: "keel-netpath-bench", dependencies: ["KeelDevices", "KeelNetwork", "KeelSystem", "KeelVMBus"]),
        // Test support: boots real guests under a chosen VMM and parses the guest agent's report.
        .target(name: "KeelTestSupport", dependencies: ["KeelSystem"]),
        .testTarget(name: "KeelPlatformTests", dependencies: ["KeelPlatform"]),
        .testTarget(name: "KeelDevicesTests", dependencies: ["KeelDevices", "KeelTestSupport"]),
        .testTarget(name: "KeelHyperVTests", dependencies: ["KeelHyperV", "KeelSystem"]),
        .testTarget(name: "KeelVMBusTests", dependencies: ["KeelVMBus", "KeelSystem"]),
        .testTarget(name: "KeelIntegrationServicesTests", dependencies: ["KeelIntegrationServices", "KeelVMBus"]),
        .testTarget(name: "KeelStorageTests", dependencies: ["KeelStorage", "KeelVMBus", "KeelSystem"]),
        .testTarget(name: "KeelNetworkTests", dependencies: ["KeelNetwork", "KeelVMBus", "KeelSystem"]),
        .testTarget(name: "KeelKVMTests", dependencies: ["KeelKVM", "KeelSystem", "KeelVM", "KeelPlatform", "KeelDevices"]),
        .testTarget(name: "KeelIntegrationTests", dependencies: ["KeelTestSupport"]),
        .testTarget(name: "KeelManagementTests", dependencies: ["KeelManagement", "KeelSystem"]),
    ],
    swiftLanguageModes: [.v6]
)

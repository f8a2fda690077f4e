import CKVM
import KeelDevices
import KeelHyperV
import KeelIntegrationServices
import KeelKVM
import KeelPlatform
import KeelSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child partition: one KVM VM with its RAM, chipset devices, firmware tables and virtual
/// processors, built from a `VMConfiguration` (the VID's job in Hyper-V terms). `start` launches
/// one thread per virtual processor; `waitUntilStopped` returns why the partition stopped.
public final class Partition: Sendable {
    public let configuration: VMConfiguration
    let vm: KVMVirtualMachine
    let ram: GuestRAM
    let processors: [VirtualProcessor]
    let control: RunControl
    let chipset: Chipset
    let hyperV: HyperVInterface
    let integration: IntegrationServicesHub

    /// - Parameters:
    ///   - consoleOutput: receives the bytes the guest writes to COM1.
    ///   - log: receives Keel's own log lines (rate-limited where the guest can trigger them).
    public init(configuration: VMConfiguration,
                consoleOutput: @escaping @Sendable (UInt8) -> Void,
                log: @escaping @Sendable (String) -> Void) throws {
        try configuration.validate()
        self.configuration = configuration
        let layout = try GuestMemoryLayout(ramSize: configuration.memoryBytes)

        let kvm = try KVMSystem()
        vm = try kvm.createVirtualMachine()
        try vm.setSystemPages()
        try vm.createInterruptControllers()
        ram = try GuestRAM(ranges: layout.ramRegions.map { ($0.guestPhysicalAddress, $0.size) })
        for (slot, region) in ram.regions.enumerated() {
            try vm.mapMemory(slot: UInt32(slot), region: region)
        }
        // Synthetic (Hyper-V) MSRs and MSRs KVM does not know come to user space.
        try vm.enableUserSpaceMSRExits()
        try vm.filterMSRsToUserSpace([HyperVInterface.msrRange])

        let processorsBox = ProcessorList()
        let control = try RunControl(kickAll: { processorsBox.kickAll() })
        self.control = control
        let panicGrace = PanicGrace(control: control)
        chipset = try Chipset(vm: vm, rtcOffsetSeconds: configuration.rtcOffsetSeconds, consoleOutput: consoleOutput, log: log,
                              systemEvent: { event in
                                  control.requestStop(event == .powerOff ? .powerOff : .reset)
                              },
                              panic: { _ in panicGrace.panicNotified() })

        let vm = self.vm
        let vcpus = try (0..<configuration.cpus).map { try vm.createVirtualCPU(id: UInt32($0)) }
        let time = try GuestTimeSource(bootProcessor: vcpus[0])
        let integration = IntegrationServicesHub(log: log)
        self.integration = integration
        hyperV = try HyperVInterface(
            vm: vm, ram: self.ram, vpCount: configuration.cpus, hostCPUs: Host.onlineProcessors, time: time, log: log,
            crashed: { report in
                // The message is the tail of the guest's kernel log; its last lines say why.
                let lines = (report.message ?? report.messageError ?? "no message").split(separator: "\n").suffix(8)
                log("guest crash report (Hyper-V crash MSRs), last lines: " + lines.joined(separator: " | "))
                control.requestStop(.guestPanic)
            },
            identified: { integration.guestIdentified($0.description) })

        for kind in IntegrationServiceKind.allCases {
            try hyperV.vmbus.add(IntegrationServiceDevice(kind, hub: integration, clock: { time.integrationClock() }))
        }

        // One SCSI controller per controller number in use, LUNs in command-line order.
        for controller in Set(configuration.disks.map(\.controller)).sorted() {
            let images = try configuration.disks.filter { $0.controller == controller }
                .map { try DiskImage(path: $0.path, readOnly: $0.readOnly) }
            try hyperV.vmbus.add(StorageControllerDevice(index: controller, disks: images, memory: ram,
                                                         maxSubchannels: configuration.cpus - 1, log: log),
                                 ownThread: "keel-storvsp\(controller)")
        }

        for (index, network) in configuration.networks.enumerated() {
            let tap = try TapDevice(name: network.tap)
            try hyperV.vmbus.add(NetworkAdapterDevice(index: index, tap: tap, mac: network.resolvedMAC(index: index),
                                                      memory: ram, log: log),
                                 ownThread: "keel-netvsp\(index)")
        }

        let entry = try BootLoader.load(configuration: configuration, layout: layout, ram: ram,
                                        extraDSDT: chipset.dsdtDevices + ACPIDevices.vmbus())

        let unclaimedLog = RateLimitedLog(sink: log)
        let dispatcher = ExitDispatcher(bus: chipset.bus, msrs: hyperV, hypercalls: hyperV) { access in
            _ = unclaimedLog.log(describe(access))
        }
        // KVM reports the TSC-deadline timer as a capability, not in its CPUID list. Without it
        // Linux calibrates the LAPIC timer against other clocks, which fails under nesting.
        let tscDeadline = kvm.checkExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0
        var hostCPUID = try kvm.supportedCPUID().map {
            CpuidEntry(function: $0.function, index: $0.index, flags: $0.flags, eax: $0.eax, ebx: $0.ebx,
                       ecx: $0.function == 1 && tscDeadline ? $0.ecx | 1 << 24 : $0.ecx, edx: $0.edx)
        }
        for feature in configuration.hiddenCPUFeatures { hostCPUID = feature.hidden(in: hostCPUID) }
        // The guest sees Hyper-V's leaves and no KVM signature (else Linux picks the KVM platform).
        var processors: [VirtualProcessor] = []
        for (index, vcpu) in vcpus.enumerated() {
            try ProcessorSetup.configure(vcpu, index: index, count: configuration.cpus, hostCPUID: hostCPUID,
                                         hypervisorLeaves: hyperV.cpuidLeaves)
            if index == 0 { try ProcessorSetup.enterLongMode(vcpu, entry: entry) }
            processors.append(VirtualProcessor(vcpu: vcpu, dispatcher: dispatcher, control: control))
        }
        self.processors = processors
        processorsBox.set(processors)
    }

    /// Starts every virtual processor's thread.
    public func start() throws(SystemError) {
        try hyperV.vmbus.start()
        for p in processors { try p.start() }
    }

    /// Kicks every virtual processor so each samples its guest RIP (for `KEEL_DEBUG_EXITS`).
    public func sampleProcessors() { for p in processors { p.kick() } }

    /// One line per virtual processor with its exit counters (for `KEEL_DEBUG_EXITS`).
    public var exitSummary: [String] {
        processors.map { "vcpu\($0.vcpu.id): \($0.statistics.summary)" }
    }

    /// Blocks until the partition stops, joins the vCPU threads and returns the first reason.
    public func waitUntilStopped() -> StopReason {
        while control.stopReason == nil { _ = control.stopped.wait() }
        for p in processors { p.join() }
        hyperV.vmbus.stop()
        return control.stopReason ?? .stopRequested
    }

    /// Asks the partition to stop (from a signal handler thread or the API).
    public func requestStop(_ reason: StopReason = .stopRequested) { control.requestStop(reason) }
    /// Stops running guest code: every vCPU leaves KVM_RUN and parks until `resume`.
    public func pause() { control.pause() }
    public func resume() { control.resume() }
    /// How many virtual processors are parked by `pause` right now.
    public var pausedProcessors: Int { control.parkedCount }

    /// Asks the guest to power off or reboot through the shutdown integration service. False
    /// when the guest has not connected that service (the caller forces the stop instead).
    public func requestGuestShutdown(reboot: Bool = false) -> Bool {
        guard integration.requestShutdown(reboot ? .reboot : .powerOff) else { return false }
        hyperV.vmbus.pokeDevices()
        return true
    }

    /// Heartbeat and negotiated integration services, as the guest last reported them.
    public var guestIntegrationState: GuestIntegrationState { integration.state }

    /// Queues console input for the guest's COM1; returns how many bytes were accepted.
    public func sendConsoleInput(_ bytes: some Collection<UInt8>) -> Int { chipset.serial.enqueueInput(bytes) }
    public var consoleHasRoom: Bool { chipset.serial.hasRoom }
}

/// The vCPU list, filled in after the run control that needs to kick them exists.
private final class ProcessorList: Sendable {
    private let list = Mutex<[VirtualProcessor]>([])
    func set(_ processors: [VirtualProcessor]) { list.withLock { $0 = processors } }
    func kickAll() { for p in list.withLock({ $0 }) { p.kick() } }
}

/// pvpanic fires from Linux's panic notifiers, before the guest writes its panic text to the
/// Hyper-V crash MSRs (from kmsg_dump): the stop waits up to `grace` for that report, which
/// stops the partition itself.
private final class PanicGrace: Sendable {
    static let grace: UInt32 = 1_500_000   // microseconds
    private let control: RunControl
    private let started = Mutex(false)

    init(control: RunControl) { self.control = control }

    func panicNotified() {
        guard started.withLock({ s in defer { s = true }; return !s }) else { return }
        let control = self.control
        do {
            _ = try NamedThread(name: "keel-panic") {
                usleep(Self.grace)
                control.requestStop(.guestPanic)
            }
        } catch {
            control.requestStop(.guestPanic)
        }
    }
}

private func describe(_ a: UnclaimedAccess) -> String {
    let what: String
    switch a.kind {
    case .port: what = "port 0x" + String(a.address, radix: 16)
    case .mmio: what = "MMIO 0x" + String(a.address, radix: 16)
    case .msr: what = "MSR 0x" + String(a.address, radix: 16)
    }
    return a.isWrite
        ? "unclaimed \(what) write of 0x\(String(a.value, radix: 16)) (\(a.size) bytes)"
        : "unclaimed \(what) read (\(a.size) bytes)"
}

import ArgumentParser
import Foundation
import KeelManagement
import KeelSystem

// The management verbs, all through keeld's REST API (Hyper-V: New-VM, Start-VM, Stop-VM,
// Get-VM, Suspend-VM, Resume-VM, Remove-VM, and vmconnect for the console).

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a VM (like New-VM); it starts stopped.",
        discussion: "Relative paths are made absolute here; keeld checks that the files exist. Exit status: 0 created, "
            + "1 keeld unreachable or failed, 2 invalid input, 4 the name is taken.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name: letters, digits, '.', '_' and '-', at most 63.") var name: String
    @Option(help: "Kernel image (bzImage).") var kernel: String
    @Option(help: "Initial ramdisk.") var initrd: String?
    @Option(help: "Kernel command line.") var cmdline: String = VMSpec.defaultCommandLine
    @Option(help: "Memory in MiB (64 to 1048576).") var memory: Int = VMSpec.defaultMemoryMiB
    @Option(help: "Virtual processors (1 to 64).") var cpus: Int = VMSpec.defaultCPUs
    @Option(help: "Raw disk image, PATH[,readonly] (repeatable; LUN 0, 1, ... in order).") var disk: [String] = []
    @Option(help: "Network adapter on a host TAP, tap=NAME[,mac=XX:XX:XX:XX:XX:XX] (repeatable).") var net: [String] = []
    @Option(help: "Seconds a graceful stop waits for the guest before turning it off.")
    var shutdownTimeout: Int = VMSpec.defaultShutdownTimeoutSeconds
    @Flag(help: "Print the VM as JSON.") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            var disks: [DiskSpec] = []
            for text in disk {
                do throws(APIError) { disks.append(try DiskSpec.parse(text)) } catch {
                    throw ClientFailure(message: error.message, status: ManagementExit.invalid)
                }
            }
            for i in disks.indices { disks[i].path = absolute(disks[i].path) }
            var networks: [NetworkSpec] = []
            for text in net {
                do throws(APIError) { networks.append(try NetworkSpec.parse(text)) } catch {
                    throw ClientFailure(message: error.message, status: ManagementExit.invalid)
                }
            }
            let spec = VMSpec(name: name, memoryMiB: memory, cpus: cpus, kernel: absolute(kernel), initrd: initrd.map(absolute),
                              commandLine: cmdline, disks: disks, networks: networks, shutdownTimeoutSeconds: shutdownTimeout)
            let client = APIClient(socketPath: connection.socketPath)
            let (vm, body) = try client.call(VMInfo.self, "POST", "/v1/vms", body: JSON.encode(spec))
            if json { printJSON(body) } else { print("created VM '\(vm.name)' (id \(vm.id)); start it with: keel start \(vm.name)") }
        }
    }
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") || path.isEmpty ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a VM (like Start-VM): keeld runs its worker process.",
        discussion: "Returns once the VM runs (the worker built the partition). Exit status: 0 running, 1 failed, "
            + "2 its configuration is no longer valid (a file moved), 3 no such VM, 4 already running.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String
    @Flag(help: "Print the VM as JSON.") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let (vm, body) = try APIClient(socketPath: connection.socketPath)
                .call(VMInfo.self, "POST", APIClient.vmPath(name, "start"))
            if json { printJSON(body) } else {
                print("VM '\(vm.name)' is \(vm.state.rawValue) (worker pid \(vm.workerPID.map(String.init) ?? "-"))")
            }
        }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a VM (like Stop-VM): ask the guest to shut down, then turn it off.",
        discussion: "Without --force the guest is asked through the Hyper-V shutdown service and turned off after the "
            + "VM's shutdown timeout. --force turns it off at once (Stop-VM -TurnOff). Waits until the VM has stopped "
            + "unless --no-wait. Exit status: 0 stopped, 1 failed or timed out, 3 no such VM, 4 not running.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String
    @Flag(help: "Turn the VM off at once.") var force = false
    @Flag(help: "Return at once; the VM is then stopping.") var noWait = false
    @Flag(help: "Print the VM as JSON.") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let client = APIClient(socketPath: connection.socketPath)
            var (vm, body) = try client.call(VMInfo.self, "POST", APIClient.vmPath(name, "stop"),
                                             query: force ? ["force": "true"] : [:])
            if !noWait { (vm, body) = try waitUntilSettled(client, name, timeout: Double(vm.spec?.shutdownTimeoutSeconds ?? 30) + 30) }
            if json { printJSON(body) } else { printOutcome(vm) }
        }
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Kill a VM's worker process (SIGKILL), for a worker that no longer answers.",
        discussion: "Exit status: 0 stopped, 1 failed, 3 no such VM, 4 no worker runs.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String
    @Flag(help: "Print the VM as JSON.") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let client = APIClient(socketPath: connection.socketPath)
            _ = try client.call(VMInfo.self, "POST", APIClient.vmPath(name, "kill"))
            let (vm, body) = try waitUntilSettled(client, name, timeout: 10)
            if json { printJSON(body) } else { printOutcome(vm) }
        }
    }
}

/// Polls until the VM leaves `stopping`.
func waitUntilSettled(_ client: APIClient, _ name: String, timeout: Double) throws(ClientFailure) -> (VMInfo, [UInt8]) {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let (vm, body) = try client.call(VMInfo.self, "GET", APIClient.vmPath(name))
        if vm.state != .stopping { return (vm, body) }
        guard Date() < deadline else {
            throw ClientFailure(message: "VM '\(name)' is still stopping after \(Int(timeout)) s", status: ManagementExit.failure)
        }
        usleep(100_000)
    }
}

func printOutcome(_ vm: VMInfo) {
    print("VM '\(vm.name)' is \(vm.state.rawValue)" + (vm.lastExit.map { ": \($0.reason)" } ?? ""))
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause a running VM (like Suspend-VM): its virtual processors stop running guest code.",
        discussion: "Exit status: 0 paused, 1 failed, 3 no such VM, 4 not running.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let (vm, _) = try APIClient(socketPath: connection.socketPath).call(VMInfo.self, "POST", APIClient.vmPath(name, "pause"))
            print("VM '\(vm.name)' is \(vm.state.rawValue)")
        }
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resume a paused VM (like Resume-VM).",
        discussion: "Exit status: 0 running, 1 failed, 3 no such VM, 4 not paused.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let (vm, _) = try APIClient(socketPath: connection.socketPath).call(VMInfo.self, "POST", APIClient.vmPath(name, "resume"))
            print("VM '\(vm.name)' is \(vm.state.rawValue)")
        }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Delete a stopped VM (like Remove-VM). Disk images are left alone.",
        discussion: "Exit status: 0 deleted, 1 failed, 3 no such VM, 4 the VM is running.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let response = try APIClient(socketPath: connection.socketPath).send("DELETE", APIClient.vmPath(name))
            try APIClient.check(response)
            print("deleted VM '\(name)'")
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List VMs and their state (like Get-VM).",
        discussion: "Exit status: 0, 1 keeld unreachable, 3 no such VM (with a name).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Only this VM.") var name: String?
    @Flag(help: "Print JSON (the API's VM objects).") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let client = APIClient(socketPath: connection.socketPath)
            let vms: [VMInfo]
            let body: [UInt8]
            if let name {
                let (vm, b) = try client.call(VMInfo.self, "GET", APIClient.vmPath(name))
                (vms, body) = ([vm], b)
            } else {
                (vms, body) = try client.call([VMInfo].self, "GET", "/v1/vms")
            }
            if json { printJSON(body); return }
            print(table(vms), terminator: "")
        }
    }

    func table(_ vms: [VMInfo]) -> String {
        var rows = [["NAME", "STATE", "CPUS", "MEMORY", "UPTIME", "HEARTBEAT", "PID", "STATUS"]]
        for vm in vms {
            let uptime = vm.startedAt.flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) }
                .map { formatDuration(Date().timeIntervalSince($0)) } ?? "-"
            // Why it is not running (last exit or start failure); nothing while it runs.
            let status = vm.state == .stopped || vm.state == .crashed || vm.state == .corrupt
                ? (vm.error ?? vm.lastExit?.reason ?? "") : (vm.state.hasWorker ? vm.error ?? "" : "")
            rows.append([vm.name, vm.state.rawValue, vm.spec.map { "\($0.cpus)" } ?? "-",
                         vm.spec.map { "\($0.memoryMiB) MiB" } ?? "-", uptime, vm.heartbeat ?? "-",
                         vm.workerPID.map(String.init) ?? "-", status])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).enumerated().map { i, cell in
                i == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
        }.joined()
    }

    func formatDuration(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a VM's event log: state changes, heartbeat, guest OS, crash reports.",
        discussion: "Exit status: 0, 1 keeld unreachable, 3 no such VM.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let (events, body) = try APIClient(socketPath: connection.socketPath)
                .call([VMEvent].self, "GET", APIClient.vmPath(name, "events"))
            if json { printJSON(body); return }
            for event in events { print("\(event.time)  \(event.kind.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))  \(event.message)") }
        }
    }
}

struct Console: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach to a running VM's serial console (like vmconnect).",
        discussion: "Shows the recent console output, then live output; keys go to the guest. On a terminal, Ctrl-] "
            + "detaches (the VM keeps running). Ends when the VM stops. Exit status: 0, 1 failed, 3 no such VM, "
            + "4 not running.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "VM name.") var name: String

    static let detachKey: UInt8 = 0x1D  // Ctrl-]

    func run() throws {
        try reportingFailures { () throws(ClientFailure) in
            let client = APIClient(socketPath: connection.socketPath)
            let socket = try client.connect()
            let request = HTTPRequest(method: "POST", path: APIClient.vmPath(name, "console"), headers: ["Upgrade": "keel-console"])
            do { try socket.sendAll(request.serialized()) } catch {
                throw ClientFailure(message: "cannot send to keeld: \(error)", status: ManagementExit.failure)
            }
            var bytes: [UInt8] = []
            var response: HTTPResponse?
            while response == nil {
                guard let chunk = try? socket.read(maxCount: 65_536), !chunk.isEmpty else {
                    response = HTTPParser.parseResponse(bytes, complete: true)
                    break
                }
                bytes += chunk
                response = HTTPParser.parseResponse(bytes, complete: false)
            }
            guard let response else { throw ClientFailure(message: "keeld closed the connection", status: ManagementExit.failure) }
            guard response.status == 101 else {
                try APIClient.check(response)
                throw ClientFailure(message: "keeld did not switch to the console (HTTP \(response.status))", status: ManagementExit.failure)
            }
            attach(socket, early: response.body)
        }
    }

    func attach(_ socket: OwnedDescriptor, early: [UInt8]) -> Never {
        let interactive = Terminal.inputIsTerminal
        if interactive { FileHandle.standardError.write(Data("keel: attached to the console of '\(name)'; Ctrl-] detaches\r\n".utf8)) }
        FileHandle.standardOutput.write(Data(early))
        Terminal.enterRawMode()
        _ = try? NamedThread(name: "keel-console-out") {
            while let chunk = try? socket.read(maxCount: 16_384), !chunk.isEmpty {
                FileHandle.standardOutput.write(Data(chunk))
            }
            Terminal.restoreMode()
            if interactive { FileHandle.standardError.write(Data("\r\nkeel: the console closed (the VM stopped)\n".utf8)) }
            Foundation.exit(0)
        }
        while true {
            let input = Terminal.readInput()
            if input.isEmpty { break }  // end of input: keep showing output until the VM stops
            if interactive, let detach = input.firstIndex(of: Self.detachKey) {
                _ = try? socket.sendAll(input[..<detach])
                Terminal.restoreMode()
                FileHandle.standardError.write(Data("\r\nkeel: detached; the VM keeps running\n".utf8))
                Foundation.exit(0)
            }
            if (try? socket.sendAll(input)) == nil { break }
        }
        while true { sleep(3600) }
    }
}

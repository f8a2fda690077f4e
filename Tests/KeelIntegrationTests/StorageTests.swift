import KeelTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The synthetic SCSI controller with the stock `hv_storvsc` on the other side: disks appear
/// with the right size and strings, data moves both ways intact, file systems made in the guest
/// are clean on the host, the guest boots from a disk, read-only disks refuse writes, and a
/// killed VM loses nothing the guest had flushed.
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil,
                Comment(rawValue: TestEnvironment.realGuestSkipReason ?? "")))
struct StorageTests {
    static let mib = 1 << 20

    @Test func diskDataBothWaysOnLinux61() async throws { try await dataBothWays(.linux61) }
    @Test func diskDataBothWaysOnLinux612() async throws { try await dataBothWays(.linux612) }

    func dataBothWays(_ version: GuestImage.Version) async throws {
        let scratch = try ScratchDirectory("storage")
        let disk = try scratch.image("data.img", mebibytes: 64)
        // The host puts 1 MiB of random bytes at 8 MiB; the guest must read exactly those.
        let seeded = try runHostCommand(["dd", "if=/dev/urandom", "of=\(disk)", "bs=1M", "seek=8", "count=1",
                                         "conv=notrunc", "status=none"])
        #expect(seeded.status == 0, "\(seeded.output)")
        let hostPattern = try ScratchDirectory.sha256(disk, offset: 8 * Self.mib, count: Self.mib)

        var boot = GuestBoot(image: GuestImage(version))
        boot.cpus = 2
        boot.disks = [disk]
        boot.script = """
            echo disk-model $(cat /sys/block/sda/device/vendor) $(cat /sys/block/sda/device/model)
            echo "KEEL-GUEST read_pattern=$(dd if=/dev/sda bs=1M skip=8 count=1 2>/dev/null | sha256sum | cut -c1-64)"
            dd if=/dev/urandom of=/tmp/p bs=1M count=4 2>/dev/null
            echo "KEEL-GUEST written_pattern=$(sha256sum /tmp/p | cut -c1-64)"
            dd if=/tmp/p of=/dev/sda bs=1M seek=16 conv=fsync 2>/dev/null && echo "KEEL-GUEST write_ok"
            # two vCPUs: the guest asked for one sub-channel (a second queue) and opened it
            echo "KEEL-GUEST storvsc_channels=$(ls /sys/bus/vmbus/devices/4b45454c-5343-5349-8000-000000000000/channels | wc -l)"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.list("block_devices").contains("sda:\(64 * Self.mib)"), "\(report.tail)")
        #expect(!report.lines(containing: "disk-model Msft Virtual Disk").isEmpty, "\(report.tail)")
        #expect(report.values["read_pattern"] == hostPattern, "guest read other bytes than the host wrote")
        #expect(report.flags.contains("write_ok"), "\(report.tail)")
        #expect(report.int("storvsc_channels") == 2, "\(report.tail)")
        let written = try #require(report.values["written_pattern"], "\(report.tail)")
        #expect(try ScratchDirectory.sha256(disk, offset: 16 * Self.mib, count: 4 * Self.mib) == written,
                "the host reads other bytes than the guest wrote")
    }

    /// Two LUNs on controller 0 and one on controller 1: three disks on two SCSI hosts.
    @Test func severalLUNsAndControllers() async throws {
        let scratch = try ScratchDirectory("storage-luns")
        let disks = [try scratch.image("a.img", mebibytes: 16), try scratch.image("b.img", mebibytes: 24) + ",readonly",
                     try scratch.image("c.img", mebibytes: 32) + ",controller=1"]
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.disks = disks
        boot.script = "echo \"KEEL-GUEST scsi_hosts=$(ls /sys/class/scsi_host | wc -l)\""
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        let sizes = report.list("block_devices").compactMap { $0.split(separator: ":").last.flatMap { Int($0) } }.sorted()
        #expect(sizes == [16, 24, 32].map { $0 * Self.mib }, "\(report.tail)")
        #expect(report.list("vmbus_devices").filter { $0 == "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f" }.count == 2)
        #expect(report.int("scsi_hosts") == 2, "\(report.tail)")
    }

    @Test func fileSystemMadeInTheGuestIsCleanOnTheHost() async throws {
        let scratch = try ScratchDirectory("storage-fs")
        let disk = try scratch.image("fs.img", mebibytes: 128)
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.disks = [disk]
        boot.script = """
            set -e
            mke2fs -q /dev/sda
            mkdir -p /mnt/d && mount -t ext2 /dev/sda /mnt/d
            for i in 1 2 3 4 5; do dd if=/dev/urandom of=/mnt/d/f$i bs=1M count=4 2>/dev/null; done
            mkdir /mnt/d/dir && echo hello > /mnt/d/dir/hello.txt
            sha256sum /mnt/d/f3 | cut -c1-64 > /tmp/sum
            umount /mnt/d
            echo "KEEL-GUEST f3=$(cat /tmp/sum) fs_done"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.flags.contains("fs_done"), "\(report.tail)")
        let fsck = try runHostCommand(["e2fsck", "-fn", disk])
        #expect(fsck.status == 0, "e2fsck found problems:\n\(fsck.output)")
        let dumped = "\(scratch.path)/f3"
        _ = try runHostCommand(["debugfs", "-R", "dump /f3 \(dumped)", disk])
        #expect(try ScratchDirectory.sha256(dumped, count: 4 * Self.mib) == report.values["f3"])
        let hello = try runHostCommand(["debugfs", "-R", "cat /dir/hello.txt", disk])
        #expect(hello.output.contains("hello"), "\(hello.output)")
    }

    @Test func guestBootsWithItsRootOnTheDisk() async throws {
        let scratch = try ScratchDirectory("storage-root")
        let image = GuestImage(.linux612)
        let root = try scratch.image("root.ext4", copying: image.rootDisk)
        var boot = GuestBoot(image: image)
        boot.disks = [root]
        boot.commandLine = "keel.root=sda"
        boot.script = "echo \"KEEL-GUEST root_mount=$(grep ' / ' /proc/mounts | cut -d' ' -f1,3 | tr ' ' ':')\""
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.values["root"] == "/dev/sda", "\(report.tail)")
        #expect(report.values["root_mount"] == "/dev/sda:ext4", "\(report.tail)")
        let fsck = try runHostCommand(["e2fsck", "-fn", root])
        #expect(fsck.status == 0, "\(fsck.output)")
    }

    @Test func readOnlyDiskRefusesWritesAndStaysUnchanged() async throws {
        let scratch = try ScratchDirectory("storage-ro")
        let disk = try scratch.image("ro.img", mebibytes: 64)
        _ = try runHostCommand(["dd", "if=/dev/urandom", "of=\(disk)", "bs=1M", "count=64", "conv=notrunc", "status=none"])
        let before = try ScratchDirectory.sha256(disk, count: 64 * Self.mib)
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.disks = [disk + ",readonly"]
        boot.script = """
            dmesg | grep 'Write Protect'
            if dd if=/dev/zero of=/dev/sda bs=4096 count=16 oflag=direct 2>/tmp/err; then echo KEEL-GUEST write=accepted;
            else echo "KEEL-GUEST write=refused"; cat /tmp/err; fi
            echo "KEEL-GUEST readable=$(dd if=/dev/sda bs=1M count=1 2>/dev/null | wc -c)"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(!report.lines(containing: "[sda] Write Protect is on").isEmpty, "\(report.tail)")
        #expect(report.values["write"] == "refused", "\(report.tail)")
        #expect(report.int("readable") == Self.mib, "\(report.tail)")
        #expect(try ScratchDirectory.sha256(disk, count: 64 * Self.mib) == before, "a read-only image changed")
    }

    @Test func killedDuringHeavyWritesKeepsWhatTheGuestFlushed() async throws {
        let scratch = try ScratchDirectory("storage-kill")
        let disk = try scratch.image("kill.img", mebibytes: 256)
        let mkfs = try runHostCommand(["mke2fs", "-q", "-t", "ext4", "-F", disk])
        #expect(mkfs.status == 0, "\(mkfs.output)")
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.disks = [disk]
        boot.script = """
            mkdir -p /mnt/d && mount -t ext4 /dev/sda /mnt/d || exit 1
            dd if=/dev/urandom of=/mnt/d/flushed.bin bs=1M count=8 2>/dev/null
            sync
            echo "KEEL-GUEST flushed=$(sha256sum /mnt/d/flushed.bin | cut -c1-64)"
            echo "KEEL-GUEST writing_more"
            i=0; while true; do dd if=/dev/zero of=/mnt/d/more$i bs=1M count=16 2>/dev/null; i=$((i + 1)); done
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300),
                                         signalAfter: ("KEEL-GUEST writing_more", SIGKILL))
        #expect(!report.timedOut && report.exitStatus != 0, "keel run should have been killed:\n\(report.tail)")
        let flushed = try #require(report.values["flushed"], "\(report.tail)")
        let fsck = try runHostCommand(["e2fsck", "-fy", disk])
        #expect(fsck.status == 0 || fsck.status == 1, "e2fsck could not repair:\n\(fsck.output)")
        let again = try runHostCommand(["e2fsck", "-fn", disk])
        #expect(again.status == 0, "still inconsistent after repair:\n\(again.output)")
        let dumped = "\(scratch.path)/flushed.bin"
        _ = try runHostCommand(["debugfs", "-R", "dump /flushed.bin \(dumped)", disk])
        #expect(try ScratchDirectory.sha256(dumped, count: 8 * Self.mib) == flushed, "flushed data lost")
    }

    /// A host that runs out of space under a sparse image: the guest's writes fail with an I/O
    /// error (DATA PROTECT, space allocation failed), Keel keeps running, reads still work.
    @Test func hostOutOfSpaceBecomesAGuestIOError() async throws {
        let scratch = try ScratchDirectory("storage-enospc")
        let small = scratch.path + "/small"
        _ = try runHostCommand(["mkdir", "-p", small])
        let mounted = try runHostCommand(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small])
        try #require(mounted.status == 0, "cannot mount a small tmpfs (needs root in the rig): \(mounted.output)")
        defer { _ = try? runHostCommand(["umount", "-l", small]) }
        let disk = small + "/sparse.img"
        _ = try runHostCommand(["truncate", "-s", "64M", disk])
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.disks = [disk]
        boot.script = """
            if dd if=/dev/urandom of=/dev/sda bs=1M count=32 oflag=direct 2>/tmp/err; then echo KEEL-GUEST big_write=ok;
            else echo KEEL-GUEST big_write=failed; cat /tmp/err; fi
            dmesg | grep -iE 'sense|critical|error' | tail -5
            echo "KEEL-GUEST read_after=$(dd if=/dev/sda bs=4096 count=1 iflag=direct 2>/dev/null | wc -c)"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.values["big_write"] == "failed", "\(report.tail)")
        #expect(report.int("read_after") == 4096, "\(report.tail)")
        #expect(!report.lines(containing: "No space left on device").isEmpty, "Keel should log the host error:\n\(report.tail)")
    }
}

// The Hyper-V simulator's .NET types: the real type names of the objects and exceptions the Hyper-V
// module returns (Microsoft.HyperV.PowerShell.*, Microsoft.Vhd.PowerShell.*), so that scripts that
// look at `GetType().Name`, `Exception.GetType().FullName`, enum names and enum numbers see what a
// Windows Server 2019/2022 host gives them. Compiled once per testbed (Add-Type -OutputAssembly) and
// loaded by Hyper-V.psm1. Only the members labctl's scripts and tests read are here.
using System;
using System.Collections.Generic;

namespace Microsoft.HyperV.PowerShell
{
    public enum VMState { Other = 1, Running = 2, Off = 3, Stopping = 4, Saved = 6, Paused = 9, Starting = 10, Reset = 11, Saving = 32773, Pausing = 32776, Resuming = 32777, FastSaved = 32779, FastSaving = 32780, RunningCritical = 32781, OffCritical = 32782, StoppingCritical = 32783, SavedCritical = 32784, PausedCritical = 32785 }
    public enum OnOffState { On = 0, Off = 1 }
    public enum StartAction { Nothing = 2, StartIfRunning = 3, Start = 4 }
    public enum StopAction { TurnOff = 0, Save = 1, ShutDown = 2 }
    public enum MigrationAuthenticationType { CredSSP = 0, Kerberos = 1 }
    public enum VMSwitchType { Private = 0, Internal = 1, External = 2 }
    public enum ControllerType { IDE = 0, SCSI = 1 }
    public enum VMOperationalStatus { Ok = 2, Degraded = 3, PredictiveFailure = 5, InService = 11, ProtocolMismatch = 32775, CommunicationFailed = 32776 }
    public enum VMIntegrationComponentOperationalStatus { Ok = 2, Degraded = 3, Error = 6, NonRecoverableError = 7, NoContact = 12, LostCommunication = 13, Disabled = 32896 }
    public enum CheckpointType { Disabled = 2, Production = 3, ProductionOnly = 4, Standard = 5 }
    public enum SnapshotType { Standard = 0, Recovery = 1, Planned = 2, Missing = 3, Replica = 4, AppConsistentReplica = 5, SyncedReplica = 6 }

    /// <summary>What the Hyper-V cmdlets throw (access denied, not found, operation failed).</summary>
    public class VirtualizationException : Exception
    {
        public VirtualizationException(string message) : base(message) { }
    }

    public class VirtualMachine
    {
        public string Name { get; set; }
        public Guid Id { get; set; }
        public Guid VMId { get { return Id; } }
        public VMState State { get; set; }
        public string Notes { get; set; }
        public short Generation { get; set; }
        public long MemoryStartup { get; set; }
        public long MemoryAssigned { get; set; }
        public bool DynamicMemoryEnabled { get; set; }
        public long ProcessorCount { get; set; }
        public TimeSpan Uptime { get; set; }
        public string Path { get; set; }
        public string ConfigurationLocation { get; set; }
        public string ComputerName { get; set; }
        public bool AutomaticCheckpointsEnabled { get; set; }
        public StopAction AutomaticStopAction { get; set; }
        public Guid? ParentSnapshotId { get; set; }
        public string ParentSnapshotName { get; set; }
        public CheckpointType CheckpointType { get; set; }
        public override string ToString() { return "VirtualMachine (Name = '" + Name + "') [Id = '" + Id + "']"; }
    }

    public class VMComponentObject
    {
        public string Name { get; set; }
        public string VMName { get; set; }
        public Guid VMId { get; set; }
        public string ComputerName { get; set; }
    }

    public class VMNetworkAdapter : VMComponentObject
    {
        public string MacAddress { get; set; }
        public bool DynamicMacAddressEnabled { get; set; }
        public string SwitchName { get; set; }
        public string[] IPAddresses { get; set; }
        public VMOperationalStatus[] Status { get; set; }
        public int Index { get; set; }
    }

    public class HardDiskDrive : VMComponentObject
    {
        public string Path { get; set; }
        public ControllerType ControllerType { get; set; }
        public int ControllerNumber { get; set; }
        public int ControllerLocation { get; set; }
        public int Index { get; set; }
    }

    public class VMIntegrationComponent : VMComponentObject
    {
        public string Id { get; set; }
        public bool Enabled { get; set; }
        public VMIntegrationComponentOperationalStatus PrimaryOperationalStatus { get; set; }
    }

    public class VMSwitch
    {
        public string Name { get; set; }
        public Guid Id { get; set; }
        public VMSwitchType SwitchType { get; set; }
    }

    public class VMSnapshot
    {
        public string Name { get; set; }
        public Guid Id { get; set; }
        public string VMName { get; set; }
        public Guid VMId { get; set; }
        public SnapshotType SnapshotType { get; set; }
        public Guid? ParentSnapshotId { get; set; }
        public string ParentSnapshotName { get; set; }
        public string Path { get; set; }
        public DateTime CreationTime { get; set; }
        public VMState State { get; set; }
    }

    public class VMMigrationNetwork
    {
        public string Subnet { get; set; }
        public uint Priority { get; set; }
    }

    public class SecureBootTemplate
    {
        public string Name { get; set; }
        public Guid Id { get; set; }
    }

    public class VMHost
    {
        public string ComputerName { get; set; }
        public string FullyQualifiedDomainName { get; set; }
        public long MemoryCapacity { get; set; }
        public int LogicalProcessorCount { get; set; }
        public string VirtualHardDiskPath { get; set; }
        public string VirtualMachinePath { get; set; }
        public bool VirtualMachineMigrationEnabled { get; set; }
        public MigrationAuthenticationType VirtualMachineMigrationAuthenticationType { get; set; }
        public bool UseAnyNetworkForMigration { get; set; }
        public uint MaximumVirtualMachineMigrations { get; set; }
        public string MacAddressMinimum { get; set; }
        public string MacAddressMaximum { get; set; }
        public SecureBootTemplate[] SecureBootTemplates { get; set; }
    }

    public class VMCompatibilityError
    {
        public string Message { get; set; }
        public long MessageId { get; set; }
        public object Source { get; set; }
    }

    public class VMCompatibilityReport
    {
        public VirtualMachine VM { get; set; }
        public string OperationType { get; set; }
        public string Path { get; set; }
        public VMCompatibilityError[] Incompatibilities { get; set; }
        /// <summary>The simulator's pending configuration (what Import-VM registers).</summary>
        public System.Collections.Hashtable Config { get; set; }
    }
}

namespace Microsoft.Vhd.PowerShell
{
    public enum VhdFormat { Unknown = 0, VHD = 2, VHDX = 3, VHDSet = 4 }
    public enum VhdType { Unknown = 0, Fixed = 2, Dynamic = 3, Differencing = 4 }

    public class VirtualHardDisk
    {
        public string ComputerName { get; set; }
        public string Path { get; set; }
        public VhdFormat VhdFormat { get; set; }
        public VhdType VhdType { get; set; }
        public ulong FileSize { get; set; }
        public ulong Size { get; set; }
        public string ParentPath { get; set; }
        public bool Attached { get; set; }
        public string DiskIdentifier { get; set; }
    }
}

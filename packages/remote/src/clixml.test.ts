import { describe, expect, it } from 'vitest';
import { decodeClixmlEscapes, isClixml, parseClixml, summarizeClixmlErrors } from './clixml.js';

// stderr of `throw` under `powershell.exe -EncodedCommand` with stderr redirected (shape from
// PowerShell#5912 / ansible#69550): progress noise first, one <S S="Error"> per formatted line.
const THROWN = [
  '#< CLIXML',
  '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>' +
    '<S S="Error">Hyper-V was unable to find a virtual machine with name "web_x0027_01 &amp; Ä".&lt;_x000D__x000A_</S>' +
    '<S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">+ Get-VM -Name x_x000D__x000A_</S><S S="Error">+ ~~~~~~~~~~~_x000D__x000A_</S>' +
    '<S S="Error">    + CategoryInfo          : InvalidArgument: (x:String) [Get-VM], VirtualizationException_x000D__x000A_</S>' +
    '<S S="Error">    + FullyQualifiedErrorId : InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM_x000D__x000A_</S>' +
    '<S S="warning">disk almost full_x000D__x000A_</S><S S="verbose">noise</S></Objs>',
].join('\r\n');

describe('CLIXML on stderr', () => {
  it('turns an error record into one readable line with its FullyQualifiedErrorId', () => {
    expect(isClixml(THROWN)).toBe(true);
    expect(summarizeClixmlErrors(THROWN)).toEqual([
      {
        message: `Hyper-V was unable to find a virtual machine with name "web'01 & Ä".<`,
        fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
        category: 'InvalidArgument: (x:String) [Get-VM], VirtualizationException',
      },
    ]);
  });

  it('keeps warnings, drops progress and verbose records', () => {
    const streams = parseClixml(THROWN);
    expect(streams.warnings).toEqual(['disk almost full']);
    expect(streams.errors).toHaveLength(1);
    expect(JSON.stringify(streams)).not.toContain('Preparing modules');
    expect(JSON.stringify(streams)).not.toContain('noise');
  });

  it('progress alone is not an error (stderr is never failure on its own)', () => {
    const progressOnly = THROWN.replace(/<S S="Error">.*?<\/S>/g, '');
    expect(summarizeClixmlErrors(progressOnly)).toEqual([]);
  });

  it('decodes UTF-16 surrogate pairs spread over two escapes and pwsh 7 ANSI colours', () => {
    expect(decodeClixmlEscapes('_xD83D__xDE00_')).toBe('😀');
    const ansi = '#< CLIXML\n<Objs Version="1.1.0.1"><S S="Error">_x001B_[91mboom_x001B_[0m_x000D__x000A_</S></Objs>';
    expect(summarizeClixmlErrors(ansi)).toEqual([{ message: 'boom' }]);
  });

  it('several <Objs> blocks and plain text next to them (PowerShell#18600)', () => {
    const mixed = `plain line before\r\n#< CLIXML\r\n<Objs Version="1.1.0.1"><S S="Error">one_x000D__x000A_</S></Objs><Objs Version="1.1.0.1"><S S="Error">two_x000D__x000A_</S></Objs>`;
    const streams = parseClixml(mixed);
    expect(streams.errors).toEqual(['one', 'two']);
    expect(streams.plain).toEqual(['plain line before']);
  });

  it('plain stderr (cmd.exe, -File) is reported as its first line', () => {
    expect(summarizeClixmlErrors('The command line is too long.\r\n')).toEqual([
      { message: 'The command line is too long.' },
    ]);
  });
});

describe('PowerShell 7 ConciseView errors (as a real pwsh 7.6 prints them with stderr redirected)', () => {
  it('takes the message from the `|` lines and the category from the first line, colours stripped', () => {
    const stderr =
      '#< CLIXML\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">_x001B_[31;1mOperationStopped: _x001B_[0m_x000A_</S><S S="Error">_x001B_[31;1m_x001B_[36;1mLine |_x001B_[0m_x000A_</S><S S="Error">_x001B_[31;1m_x001B_[36;1m_x001B_[36;1m   4 | _x001B_[0m _x001B_[36;1mthrow (New-Object System.InvalidOperationException "it\'s gone")_x001B_[0m_x000A_</S><S S="Error">_x001B_[31;1m_x001B_[36;1m_x001B_[36;1m_x001B_[0m_x001B_[36;1m_x001B_[0m_x001B_[36;1m     | _x001B_[31;1m ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~_x001B_[0m_x000A_</S><S S="Error">_x001B_[31;1m_x001B_[36;1m_x001B_[36;1m_x001B_[0m_x001B_[36;1m_x001B_[0m_x001B_[36;1m_x001B_[31;1m_x001B_[31;1m_x001B_[36;1m     | _x001B_[31;1mit\'s gone_x001B_[0m_x000A_</S></Objs>';
    expect(summarizeClixmlErrors(stderr)).toEqual([{ message: "it's gone", category: 'OperationStopped' }]);
  });
});

describe('CLIXML inside CLIXML (sshd DefaultShell = Windows PowerShell)', () => {
  // Constructed from the layering, not captured on a host: the outer powershell.exe writes each line
  // of the inner one's stderr as an error record of its own document.
  const inner =
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">Hyper-V was unable to find a virtual machine with name "it\'s gone"._x000D__x000A_</S><S S="Error">    + CategoryInfo          : InvalidArgument: (:) [Get-VM], VirtualizationException_x000D__x000A_</S><S S="Error">    + FullyQualifiedErrorId : InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM_x000D__x000A_</S></Objs>';
  const escapeXml = (text: string) =>
    text
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/\r/g, '_x000D_')
      .replace(/\n/g, '_x000A_');
  const outer = `#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">${inner
    .split('\r\n')
    .map((line) => `<S S="Error">${escapeXml(line)}_x000D__x000A_</S>`)
    .join('')}</Objs>`;

  it('decodes the inner document: the message and FullyQualifiedErrorId of the real error', () => {
    expect(summarizeClixmlErrors(outer)).toEqual([
      {
        message: 'Hyper-V was unable to find a virtual machine with name "it\'s gone".',
        fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
        category: 'InvalidArgument: (:) [Get-VM], VirtualizationException',
      },
    ]);
  });
});

/**
 * The SFTP floor: the least Node program that copies one file with ssh2, the library poller's
 * SFTP source uses: connect with a key, `fastGet` with its defaults, then fsync the file (poller
 * fsyncs before it renames into place, so the floor does too). Nothing else.
 *
 * Usage: node dist/bench/floors/sftp-fastget.js <host> <port> <user> <key file> <remote> <local>
 */
import { closeSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { Client } from 'ssh2';

const [host = '', port = '22', username = '', keyFile = '', remote = '', local = ''] = process.argv.slice(2);
const client = new Client();
await new Promise<void>((resolve, reject) => {
  client.once('ready', resolve).once('error', reject);
  client.connect({ host, port: Number(port), username, privateKey: readFileSync(keyFile) });
});
await new Promise<void>((resolve, reject) => {
  client.sftp((err, sftp) => {
    if (err) return reject(err);
    sftp.fastGet(remote, local, (e) => (e ? reject(e) : resolve()));
  });
});
const fd = openSync(local, 'r+');
fsyncSync(fd);
closeSync(fd);
client.end();

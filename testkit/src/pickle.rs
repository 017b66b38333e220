//! The CIFAR-10 python batches' byte layout, written the way Python 2's cPickle wrote the
//! official files, so tests need neither Python 2 nor the download.

/// Writes a CIFAR-10 python batch exactly as Python 2's cPickle (protocol 2) laid out the
/// official files.
pub fn write_cifar_batch_py2(data: &[u8], labels: &[i32]) -> Vec<u8> {
    let mut o = vec![0x80, 2, b'}', b'q', 1, b'('];
    let short = |o: &mut Vec<u8>, s: &str| {
        o.push(b'U');
        o.push(s.len() as u8);
        o.extend_from_slice(s.as_bytes());
    };
    short(&mut o, "batch_label");
    short(&mut o, "testing batch 1 of 1");
    short(&mut o, "labels");
    o.extend_from_slice(b"]q\x02(");
    for &l in labels {
        o.push(b'K');
        o.push(l as u8);
    }
    o.push(b'e');
    short(&mut o, "data");
    o.extend_from_slice(
        b"cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87R",
    );
    o.extend_from_slice(b"q\x05(K\x01");
    o.push(b'M');
    o.extend_from_slice(&(labels.len() as u16).to_le_bytes());
    o.extend_from_slice(b"M\x00\x0c\x86");
    o.extend_from_slice(b"cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    o.push(0x89);
    o.push(b'T');
    o.extend_from_slice(&(data.len() as u32).to_le_bytes());
    o.extend_from_slice(data);
    o.extend_from_slice(b"tbu.");
    o
}
